using System.Text.Json.Nodes;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests;

/// The real tokenizers of the reference files, loaded once per test run.
static class ReferenceTokenizers
{
    /// DeepSeek-R1's tokenizer is DeepSeek-V3's with ids 128798/128799 renamed to <think>/</think>
    /// (the same patch make-goldens.mjs applies before asking the reference library).
    public static readonly Lazy<string> R1Folder = new(() =>
    {
        var source = TestPaths.ReferenceTokenizer("deepseek_v3");
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "tokenizer.json")))!.AsObject();
        foreach (var token in json["added_tokens"]!.AsArray())
        {
            var id = (int)token!["id"]!;
            if (id is 128798 or 128799)
            {
                token["content"] = id == 128798 ? "<think>" : "</think>";
                token["special"] = false;
                token["normalized"] = true;
            }
        }
        var dir = TestPaths.TempDir();
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        File.Copy(Path.Combine(source, "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
        return dir;
    });

    private static readonly Dictionary<string, Lazy<PretrainedTokenizer>> Loaded = new()
    {
        ["deepseek_v3"] = new(() => PretrainedTokenizer.Load(TestPaths.ReferenceTokenizer("deepseek_v3"))),
        ["deepseek_r1"] = new(() => PretrainedTokenizer.Load(R1Folder.Value)),
        ["qwen2_5"] = new(() => PretrainedTokenizer.Load(TestPaths.ReferenceTokenizer("qwen2_5"))),
        ["qwen3"] = new(() => PretrainedTokenizer.Load(TestPaths.ReferenceTokenizer("qwen3"))),
        ["llama3_1"] = new(() => PretrainedTokenizer.Load(TestPaths.ReferenceTokenizer("llama3_1"))),
    };

    public static PretrainedTokenizer Get(string name) => Loaded[name].Value;
}
