using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using R1Sharp.Tokenization;
using static TorchSharp.torch;

namespace R1Sharp.Server.Tests;

/// A real Llama checkpoint whose weights make greedy output a known script: attention and MLP
/// outputs are zero, each token embeds as its own unit vector, and lm_head maps token i to the
/// token that should follow it. With R1Sharp's byte tokenizer and a template that opens `<think>`:
/// the reply to any chat is reasoning "xy", then content "ok", then end of sequence (5 tokens).
/// After "q" the model alternates "r", "q", … and never stops (for long-running requests).
static class ScriptedModel
{
    public const string Reasoning = "xy";
    public const string Content = "ok";
    public const int CompletionTokens = 5;
    public const string ChatTemplate = ByteTokenizer.ChatTemplate + "{% if add_generation_prompt %}<think>\n{% endif %}";

    private static int Byte(char c) => ByteTokenizer.ByteOffset + c;

    /// A one-layer Llama whose attention and MLP output zero and whose lm_head maps each token to
    /// `next[token]` (end of sequence otherwise): greedy decoding follows the script.
    public static void WriteWeights(string dir, int vocab, IReadOnlyDictionary<int, int> next, int maxPositions)
    {
        var hidden = (vocab + 3) / 4 * 4;
        var config = ModelConfig.Parse(new JsonObject
        {
            ["model_type"] = "llama", ["vocab_size"] = vocab, ["hidden_size"] = hidden, ["intermediate_size"] = 16,
            ["num_hidden_layers"] = 1, ["num_attention_heads"] = 2, ["num_key_value_heads"] = 1, ["max_position_embeddings"] = maxPositions,
            ["rms_norm_eps"] = 1e-6, ["bos_token_id"] = ByteTokenizer.Bos, ["eos_token_id"] = ByteTokenizer.Eos,
        }.ToJsonString());
        using var model = ModelIO.Create(config);
        using (no_grad())
        {
            foreach (var (_, p) in model.named_parameters()) p.zero_();
            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            parameters["model.embed_tokens.weight"].narrow(1, 0, vocab).copy_(eye(vocab));
            foreach (var norm in parameters.Where(p => p.Key.EndsWith("norm.weight"))) norm.Value.fill_(1);
            var head = parameters["lm_head.weight"];
            for (int token = 0; token < vocab; token++) head[next.GetValueOrDefault(token, ByteTokenizer.Eos), token] = 1;
        }
        ModelIO.Save(model, dir);
    }

    public static string Create(int maxPositions = 65536)
    {
        var dir = Path.Combine(Path.GetTempPath(), "r1sharp-server-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var next = new Dictionary<int, int>
        {
            [Byte('\n')] = Byte('x'), [Byte('x')] = Byte('y'), [Byte('y')] = ByteTokenizer.ThinkClose,
            [ByteTokenizer.ThinkClose] = Byte('o'), [Byte('o')] = Byte('k'), [Byte('k')] = ByteTokenizer.Eos,
            [Byte('q')] = Byte('r'), [Byte('r')] = Byte('q'),
        };
        WriteWeights(dir, ByteTokenizer.VocabSize, next, maxPositions);
        ByteTokenizer.Instance.Save(dir);
        var configPath = Path.Combine(dir, "tokenizer_config.json");
        var tokenizerConfig = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        tokenizerConfig["chat_template"] = ChatTemplate;
        File.WriteAllText(configPath, tokenizerConfig.ToJsonString());
        return dir;
    }
}
