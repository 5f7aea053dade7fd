using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests;

/// Small random dense models saved with R1Sharp's byte-level tokenizer files, for text-level tests.
static class TinyChatModels
{
    public static string Create(string modelType = "qwen2", string? chatTemplate = null, JsonObject? generationConfig = null, int maxPositions = 96)
    {
        var dir = TestPaths.TempDir();
        var config = ModelConfig.Parse(new JsonObject
        {
            ["model_type"] = modelType, ["vocab_size"] = ByteTokenizer.VocabSize, ["hidden_size"] = 32, ["intermediate_size"] = 64,
            ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = maxPositions,
            ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 10000.0, ["tie_word_embeddings"] = modelType == "qwen2",
            ["bos_token_id"] = ByteTokenizer.Bos, ["eos_token_id"] = ByteTokenizer.Eos,
        }.ToJsonString());
        using (var model = ModelIO.Create(config))
        {
            ModelIO.Initialize(model, seed: 11, std: 0.5);
            ModelIO.Save(model, dir);
        }
        ByteTokenizer.Instance.Save(dir);
        if (chatTemplate is not null)
        {
            var path = Path.Combine(dir, "tokenizer_config.json");
            var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            json["chat_template"] = chatTemplate;
            File.WriteAllText(path, json.ToJsonString());
        }
        if (generationConfig is not null) File.WriteAllText(Path.Combine(dir, "generation_config.json"), generationConfig.ToJsonString());
        return dir;
    }
}
