using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using R1Sharp.Tokenization;

namespace R1Sharp.Server.Tests;

/// deploy/: every series the Grafana dashboard and the docs query is one the server exports.
public class DeployTests
{
    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "R1Sharp.slnx"))) dir = dir.Parent;
        return dir!.FullName;
    }

    /// A small random DeepSeek MoE model with the byte tokenizer, so that the expert-load series exist.
    private static string MoeModel()
    {
        var dir = Path.Combine(Path.GetTempPath(), "r1sharp-server-tests", Guid.NewGuid().ToString("N"));
        var config = ModelConfig.Parse(new JsonObject
        {
            ["model_type"] = "deepseek_v3", ["vocab_size"] = ByteTokenizer.VocabSize, ["hidden_size"] = 32, ["intermediate_size"] = 48,
            ["moe_intermediate_size"] = 16, ["num_hidden_layers"] = 2, ["first_k_dense_replace"] = 1, ["num_attention_heads"] = 2,
            ["n_routed_experts"] = 4, ["n_shared_experts"] = 1, ["num_experts_per_tok"] = 2, ["n_group"] = 1, ["topk_group"] = 1,
            ["q_lora_rank"] = null, ["kv_lora_rank"] = 16, ["qk_nope_head_dim"] = 8, ["qk_rope_head_dim"] = 4, ["v_head_dim"] = 8,
            ["max_position_embeddings"] = 256, ["bos_token_id"] = ByteTokenizer.Bos, ["eos_token_id"] = ByteTokenizer.Eos,
        }.ToJsonString());
        using var model = ModelIO.Create(config);
        ModelIO.Initialize(model, seed: 1, std: 0.3);
        ModelIO.Save(model, dir);
        ByteTokenizer.Instance.Save(dir);
        return dir;
    }

    [Fact]
    public async Task TheDashboardQueriesOnlyExportedSeries()
    {
        await using var server = new TestServer(o => { o.ModelDir = MoeModel(); o.MaxContext = 256; });
        for (int i = 0; i < 3; i++)
            (await server.Http.PostAsync("/v1/chat/completions", TestServer.Json("""{"messages":[{"role":"user","content":"1 + 2 ="}],"max_tokens":6}"""))).EnsureSuccessStatusCode();
        var exported = Regex.Matches(await server.Http.GetStringAsync("/metrics"), @"^(r1sharp_[a-z_]+)", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToHashSet();
        var dashboard = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoRoot(), "deploy", "grafana", "r1sharp.json")))!;
        var queried = dashboard["panels"]!.AsArray().SelectMany(p => p!["targets"]!.AsArray()).Select(t => (string)t!["expr"]!)
            .SelectMany(e => Regex.Matches(e, @"r1sharp_[a-z_]+").Select(m => m.Value)).ToHashSet();
        Assert.True(queried.Count >= 15, $"only {queried.Count} series queried");
        Assert.Empty(queried.Except(exported));
        Assert.Contains("r1sharp_expert_tokens_total", exported);
        var scrape = File.ReadAllText(Path.Combine(RepoRoot(), "deploy", "prometheus.yml"));
        Assert.Contains("metrics_path: /metrics", scrape);
    }
}
