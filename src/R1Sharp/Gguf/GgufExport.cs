using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using R1Sharp.Tokenization;
using static TorchSharp.torch;

namespace R1Sharp.Gguf;

/// A Hugging Face model folder as a GGUF file for llama.cpp, Ollama and LM Studio: architecture
/// metadata, tensors and the tokenizer under the names and in the layouts llama.cpp's converter writes
/// (learned from convert_hf_to_gguf.py and llama.cpp's loader; written anew here): `qwen2`, `qwen3`,
/// `llama` (q/k rows permuted from rotate-half to llama.cpp's adjacent pairs) and `deepseek2` (MLA with
/// kv_b split into attn_k_b/attn_v_b, experts stacked). Norms, biases and the router stay float32;
/// other matrices take the requested type, float16 where a row is not a whole number of 32-blocks.
public static class GgufExport
{
    public sealed record Summary(string Architecture, int Tensors, long Bytes, bool Tokenizer);

    public static Summary Export(string modelDir, string outPath, GgmlType type)
    {
        using var model = ModelIO.Load(modelDir);
        var weights = model.state_dict().ToDictionary(p => p.Key, p => p.Value);
        var writer = new GgufWriter();
        var c = model.Config;
        var architecture = c switch
        {
            DeepSeekConfig => "deepseek2",
            DenseConfig { ModelType: "qwen2" } => "qwen2",
            DenseConfig { ModelType: "qwen3" } => "qwen3",
            DenseConfig => "llama",
            _ => throw new R1SharpException($"GGUF export: model_type {c.ModelType} has no llama.cpp architecture here"),
        };
        if (c.Window is not null) throw new R1SharpException("GGUF export: sliding-window attention is not exported (llama.cpp would attend globally)");
        writer.Add("general.architecture", architecture);
        writer.Add("general.type", "model");
        writer.Add("general.name", Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDir))));
        writer.Add("general.file_type", type switch { GgmlType.F32 => 0u, GgmlType.F16 => 1u, GgmlType.Q4_0 => 2u, _ => 7u });
        writer.Add("general.quantization_version", 2u);
        var a = architecture;
        writer.Add($"{a}.block_count", (uint)c.NumHiddenLayers);
        writer.Add($"{a}.context_length", (uint)c.MaxPositionEmbeddings);
        writer.Add($"{a}.embedding_length", (uint)c.HiddenSize);
        writer.Add($"{a}.feed_forward_length", (uint)c.IntermediateSize);
        writer.Add($"{a}.attention.head_count", (uint)c.NumAttentionHeads);
        writer.Add($"{a}.attention.layer_norm_rms_epsilon", (float)c.RmsNormEps);
        writer.Add($"{a}.rope.freq_base", (float)c.RopeTheta);
        writer.Add($"{a}.vocab_size", (uint)c.VocabSize);

        void Tensor(string name, Tensor t, GgmlType? forced = null) => AddTensor(writer, name, t, forced ?? type);
        Tensor("token_embd.weight", weights["model.embed_tokens.weight"]);
        Tensor("output_norm.weight", weights["model.norm.weight"], GgmlType.F32);
        if (weights.TryGetValue("lm_head.weight", out var head)) Tensor("output.weight", head);
        if (c is DenseConfig dense) Dense(writer, dense, a, weights, Tensor);
        else DeepSeek(writer, (DeepSeekConfig)c, weights, Tensor);

        var tokenizer = Tokenizer(writer, modelDir, c);
        writer.Save(outPath);
        return new Summary(architecture, writer.TensorCount, new FileInfo(outPath).Length, tokenizer);
    }

    /// The type a tensor is stored in: norms, biases, the router and every 1-D tensor in float32 (llama.cpp
    /// multiplies them into float32 activations); with q4_0 the embedding table and the output at q8_0
    /// (as R1Sharp's int4 keeps them at 8 bits and llama.cpp's quantizer keeps the output above 4); a
    /// row that is not a whole number of 32-blocks in float16.
    public static GgmlType TypeFor(string name, long[] shape, GgmlType requested)
    {
        if (shape.Length <= 1 || name.EndsWith("_norm.weight") || name.Contains("ffn_gate_inp")) return GgmlType.F32;
        var type = requested == GgmlType.Q4_0 && name is "token_embd.weight" or "output.weight" ? GgmlType.Q8_0 : requested;
        return type is GgmlType.Q8_0 or GgmlType.Q4_0 && shape[^1] % 32 != 0 ? GgmlType.F16 : type;
    }

    private static void AddTensor(GgufWriter writer, string name, Tensor t, GgmlType requested)
    {
        var type = TypeFor(name, t.shape, requested);
        var data = t.detach().to_type(ScalarType.Float32).contiguous().cpu();
        writer.AddTensor(name, data.shape, type, () => GgmlBlocks.Encode(data.data<float>().ToArray(), type));
    }

    private static void Dense(GgufWriter writer, DenseConfig c, string a, Dictionary<string, Tensor> w, Action<string, Tensor, GgmlType?> tensor)
    {
        writer.Add($"{a}.attention.head_count_kv", (uint)c.NumKeyValueHeads);
        writer.Add($"{a}.attention.key_length", (uint)c.HeadDim);
        writer.Add($"{a}.attention.value_length", (uint)c.HeadDim);
        var llama = a == "llama";
        if (llama) writer.Add($"{a}.rope.dimension_count", (uint)c.HeadDim);
        if (c.RopeScaling is { Kind: "linear" } linear)
        {
            writer.Add($"{a}.rope.scaling.type", "linear");
            writer.Add($"{a}.rope.scaling.factor", (float)linear.Factor);
        }
        if (c.RopeScaling is { Kind: "llama3" })
        {
            if (!llama) throw new R1SharpException("GGUF export: llama3 rope scaling is exported for llama only");
            // llama.cpp divides each plain frequency by rope_freqs: the plain/scaled ratio of DenseForCausalLM's own frequencies.
            var plain = Rope.InverseFrequencies(c.HeadDim, c.RopeTheta);
            var scaled = DenseForCausalLM.RopeFrequencies(c);
            tensor("rope_freqs.weight", TorchSharp.torch.tensor(plain.Zip(scaled, (p, s) => p / s).ToArray()), GgmlType.F32);
        }
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            string hf = $"model.layers.{i}.", gg = $"blk.{i}.";
            tensor(gg + "attn_norm.weight", w[hf + "input_layernorm.weight"], null);
            tensor(gg + "ffn_norm.weight", w[hf + "post_attention_layernorm.weight"], null);
            foreach (var (from, to, heads) in new[] { ("q_proj", "attn_q", c.NumAttentionHeads), ("k_proj", "attn_k", c.NumKeyValueHeads), ("v_proj", "attn_v", 0), ("o_proj", "attn_output", 0) })
                foreach (var kind in new[] { "weight", "bias" })
                    if (w.TryGetValue($"{hf}self_attn.{from}.{kind}", out var t))
                        tensor($"{gg}{to}.{kind}", llama && heads > 0 ? PairRotaryRows(t, heads) : t, null);
            foreach (var norm in new[] { "q_norm", "k_norm" })
                if (w.TryGetValue($"{hf}self_attn.{norm}.weight", out var t)) tensor($"{gg}attn_{norm}.weight", t, GgmlType.F32);
            foreach (var (from, to) in new[] { ("gate_proj", "ffn_gate"), ("up_proj", "ffn_up"), ("down_proj", "ffn_down") })
                foreach (var kind in new[] { "weight", "bias" })
                    if (w.TryGetValue($"{hf}mlp.{from}.{kind}", out var t)) tensor($"{gg}{to}.{kind}", t, null);
        }
    }

    /// Rotate-half pairs (i, i + d/2) to llama.cpp's adjacent pairs (2i, 2i + 1): within each head, new row
    /// 2i + s is old row s·d/2 + i (the permute of convert_hf_to_gguf.py's LlamaModel).
    private static Tensor PairRotaryRows(Tensor t, int heads)
    {
        var rows = t.shape[0];
        var shape = t.dim() == 2 ? new long[] { heads, 2, rows / heads / 2, t.shape[1] } : [heads, 2, rows / heads / 2];
        return t.reshape(shape).transpose(1, 2).reshape(t.shape).contiguous();
    }

    private static void DeepSeek(GgufWriter writer, DeepSeekConfig c, Dictionary<string, Tensor> w, Action<string, Tensor, GgmlType?> tensor)
    {
        const string a = "deepseek2";
        var moeLayers = Enumerable.Range(0, c.NumHiddenLayers).Where(c.IsMoeLayer).ToList();
        writer.Add($"{a}.attention.head_count_kv", 1u);
        writer.Add($"{a}.leading_dense_block_count", (uint)(moeLayers.Count == 0 ? c.NumHiddenLayers : moeLayers[0]));
        writer.Add($"{a}.attention.q_lora_rank", (uint)(c.QLoraRank ?? 0));   // llama.cpp requires the key; 0 = no q LoRA
        writer.Add($"{a}.attention.kv_lora_rank", (uint)c.KvLoraRank);
        writer.Add($"{a}.attention.key_length", (uint)(c.KvLoraRank + c.QkRopeHeadDim));
        writer.Add($"{a}.attention.value_length", (uint)c.KvLoraRank);
        writer.Add($"{a}.attention.key_length_mla", (uint)c.QkHeadDim);
        writer.Add($"{a}.attention.value_length_mla", (uint)c.VHeadDim);
        writer.Add($"{a}.rope.dimension_count", (uint)c.QkRopeHeadDim);
        writer.Add($"{a}.expert_feed_forward_length", (uint)c.MoeIntermediateSize);
        writer.Add($"{a}.expert_count", (uint)c.RoutedExperts);
        writer.Add($"{a}.expert_used_count", (uint)(c.NumExpertsPerTok ?? 0));
        writer.Add($"{a}.expert_shared_count", (uint)(c.NSharedExperts ?? 0));
        writer.Add($"{a}.expert_weights_scale", (float)c.RoutedScalingFactor);
        if (c.NormTopkProb) writer.Add($"{a}.expert_weights_norm", true);
        writer.Add($"{a}.expert_gating_func", c.ScoringFunc == "sigmoid" ? 2u : 1u);
        // llama.cpp asserts 1 < groups used < groups; otherwise group-limited routing is plain top-k anyway.
        if (c.ExpertGroups > 1 && c.GroupsPerToken < c.ExpertGroups)
        {
            writer.Add($"{a}.expert_group_count", (uint)c.ExpertGroups);
            writer.Add($"{a}.expert_group_used_count", (uint)c.GroupsPerToken);
        }
        if (c.UsesYarn && c.RopeScaling is { } y && c.MaxPositionEmbeddings > y.OriginalMaxPositionEmbeddings)
        {
            writer.Add($"{a}.rope.scaling.type", "yarn");
            writer.Add($"{a}.rope.scaling.factor", (float)y.Factor);
            writer.Add($"{a}.rope.scaling.original_context_length", (uint)y.OriginalMaxPositionEmbeddings!.Value);
            writer.Add($"{a}.rope.scaling.yarn_beta_fast", (float)y.BetaFast);
            writer.Add($"{a}.rope.scaling.yarn_beta_slow", (float)y.BetaSlow);
            writer.Add($"{a}.rope.scaling.yarn_log_multiplier", (float)(0.1 * y.MscaleAllDim));   // llama.cpp's convention
        }
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            string hf = $"model.layers.{i}.", gg = $"blk.{i}.";
            tensor(gg + "attn_norm.weight", w[hf + "input_layernorm.weight"], null);
            tensor(gg + "ffn_norm.weight", w[hf + "post_attention_layernorm.weight"], null);
            foreach (var (from, to) in new[] { ("q_proj", "attn_q"), ("q_a_proj", "attn_q_a"), ("q_b_proj", "attn_q_b"), ("kv_a_proj_with_mqa", "attn_kv_a_mqa"), ("o_proj", "attn_output") })
                if (w.TryGetValue($"{hf}self_attn.{from}.weight", out var t)) tensor($"{gg}{to}.weight", t, null);
            if (w.TryGetValue(hf + "self_attn.q_a_layernorm.weight", out var qNorm)) tensor(gg + "attn_q_a_norm.weight", qNorm, null);
            tensor(gg + "attn_kv_a_norm.weight", w[hf + "self_attn.kv_a_layernorm.weight"], null);
            // kv_b [heads·(nope+v), rank] → k_b [heads, rank, nope] (transposed) and v_b [heads, v, rank].
            var kvB = w[hf + "self_attn.kv_b_proj.weight"].view(c.NumAttentionHeads, c.QkNopeHeadDim + c.VHeadDim, c.KvLoraRank);
            tensor(gg + "attn_k_b.weight", kvB.narrow(1, 0, c.QkNopeHeadDim).transpose(1, 2).contiguous(), null);
            tensor(gg + "attn_v_b.weight", kvB.narrow(1, c.QkNopeHeadDim, c.VHeadDim).contiguous(), null);
            if (!c.IsMoeLayer(i))
            {
                foreach (var (from, to) in new[] { ("gate_proj", "ffn_gate"), ("up_proj", "ffn_up"), ("down_proj", "ffn_down") })
                    tensor($"{gg}{to}.weight", w[$"{hf}mlp.{from}.weight"], null);
                continue;
            }
            tensor(gg + "ffn_gate_inp.weight", w[hf + "mlp.gate.weight"], GgmlType.F32);
            if (w.TryGetValue(hf + "mlp.gate.e_score_correction_bias", out var bias)) tensor(gg + "exp_probs_b.bias", bias, GgmlType.F32);
            foreach (var (from, to) in new[] { ("gate_proj", "ffn_gate"), ("up_proj", "ffn_up"), ("down_proj", "ffn_down") })
            {
                tensor($"{gg}{to}_exps.weight", stack(Enumerable.Range(0, c.RoutedExperts).Select(e => w[$"{hf}mlp.experts.{e}.{from}.weight"]).ToArray()), null);
                if (w.TryGetValue($"{hf}mlp.shared_experts.{from}.weight", out var shared)) tensor($"{gg}{to}_shexp.weight", shared, null);
            }
        }
    }

    /// tokenizer.ggml.*: the folder's tokenizer as llama.cpp's BPE vocabulary (one string per embedding
    /// row, padded with [PAD{i}]), its merges and special ids; without tokenizer files, placeholders only
    /// (the file then runs on token ids). Returns whether a real tokenizer was written.
    private static bool Tokenizer(GgufWriter writer, string dir, ModelConfig c)
    {
        var file = Path.Combine(dir, "tokenizer.json");
        var tokens = Enumerable.Range(0, c.VocabSize).Select(i => $"[PAD{i}]").ToArray();
        var types = Enumerable.Repeat(5, c.VocabSize).ToArray();   // unused
        var merges = new List<string>();
        var pre = "default";
        PretrainedTokenizer? loaded = null;
        if (File.Exists(file))
        {
            loaded = PretrainedTokenizer.Load(dir);
            var json = JsonNode.Parse(InputFile.ReadText(file, 512 << 20))!;
            foreach (var (token, id) in json["model"]!["vocab"]!.AsObject())
                if ((int)id! is var i && i < c.VocabSize) (tokens[i], types[i]) = (token, 1);
            foreach (var added in json["added_tokens"]?.AsArray() ?? [])
                if ((int)added!["id"]! is var i && i < c.VocabSize)
                    (tokens[i], types[i]) = ((string)added["content"]!, (bool?)added["special"] == true ? 3 : 4);
            foreach (var m in json["model"]!["merges"]!.AsArray())
                merges.Add(m is JsonArray pair ? $"{(string)pair[0]!} {(string)pair[1]!}" : (string)m!);
            pre = PreTokenizerName(string.Join("\n", Patterns(json["pre_tokenizer"])));
        }
        writer.Add("tokenizer.ggml.model", "gpt2");
        writer.Add("tokenizer.ggml.pre", pre);
        writer.Add("tokenizer.ggml.tokens", tokens);
        writer.Add("tokenizer.ggml.token_type", types);
        writer.Add("tokenizer.ggml.merges", merges);
        if ((loaded?.BosId ?? c.BosTokenId) is int bos && bos < c.VocabSize) writer.Add("tokenizer.ggml.bos_token_id", (uint)bos);
        if ((loaded?.EosId ?? c.EosTokenIds?.FirstOrDefault()) is int eos && eos < c.VocabSize) writer.Add("tokenizer.ggml.eos_token_id", (uint)eos);
        if (loaded is not null)
        {
            writer.Add("tokenizer.ggml.add_bos_token", loaded.BosId is int b && loaded.Encode("a", addSpecialTokens: true).FirstOrDefault() == b);
            writer.Add("tokenizer.ggml.add_eos_token", false);
            if (loaded.ChatTemplate is { } template) writer.Add("tokenizer.chat_template", template);
        }
        return loaded is not null;
    }

    /// The Split regexes of a pre_tokenizer, as written.
    private static IEnumerable<string> Patterns(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(p => p.Key == "Regex" && p.Value is JsonValue v && v.TryGetValue<string>(out var regex) ? [regex] : Patterns(p.Value)),
        JsonArray a => a.SelectMany(Patterns),
        _ => [],
    };

    /// llama.cpp's name for a known split pattern (it refuses unknown names): DeepSeek-V3's (CJK runs kept
    /// apart), Llama-3's (digits in threes), Qwen2's (single digits).
    private static string PreTokenizerName(string patterns) =>
        patterns.Contains("[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+") || patterns.Contains("[一-龥぀-ゟ゠-ヿ]+") ? "deepseek-v3"
        : patterns.Contains("\\p{N}{1,3}") ? "llama-bpe"
        : patterns.Contains("[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}") ? "qwen2"
        : "default";
}
