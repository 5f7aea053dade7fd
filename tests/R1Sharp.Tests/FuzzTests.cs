using System.Text;
using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Generation;
using R1Sharp.Templates;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests;

/// Seeded random mutations of the files a model folder holds: each load either works or fails with
/// one R1SharpException: never another exception type, a hang or a crash.
public class FuzzTests
{
    private static readonly JsonNode?[] Interesting =
        [null, true, false, 0, 1, -1, 2, 3.5, -7.25, int.MaxValue, int.MinValue, long.MaxValue, 1e30, "", "x", "silu", "yarn", new JsonArray(), new JsonArray(1, 2), new JsonObject(), new string('z', 300)];

    /// Runs `load` with a time limit; it may succeed or throw R1SharpException, nothing else.
    private static void Survives(Action load, string what)
    {
        var task = Task.Run(load);
        Assert.True(((IAsyncResult)task).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(30)), $"{what}: hung");
        if (task.Exception?.InnerException is { } e && e is not R1SharpException)
            Assert.Fail($"{what}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
    }

    /// One structural change somewhere in a JSON document: a key removed, a value replaced by an
    /// interesting one, an array element dropped or duplicated, a string edited.
    private static JsonNode Mutate(JsonNode root, Random random)
    {
        var nodes = new List<JsonNode>();
        void Walk(JsonNode? n) { if (n is null) return; nodes.Add(n); if (n is JsonObject o) foreach (var (_, v) in o) Walk(v); else if (n is JsonArray a) foreach (var v in a) Walk(v); }
        Walk(root);
        var containers = nodes.Where(n => n is JsonObject { Count: > 0 } or JsonArray { Count: > 0 }).ToList();
        if (containers.Count == 0) return root;
        var target = containers[random.Next(containers.Count)];
        JsonNode? Pick() => Interesting[random.Next(Interesting.Length)]?.DeepClone();
        if (target is JsonObject obj)
        {
            var key = obj.Select(p => p.Key).ElementAt(random.Next(obj.Count));
            switch (random.Next(4))
            {
                case 0: obj.Remove(key); break;
                case 1: obj[key] = Pick(); break;
                case 2: obj[key] = obj[key] is JsonValue v && v.TryGetValue<string>(out var s) && s.Length > 0 ? s[..random.Next(s.Length)] + "\u0000{%" + s[random.Next(s.Length)..] : Pick(); break;
                default: obj[key + "_"] = obj[key]?.DeepClone(); obj[key] = Pick(); break;
            }
        }
        else if (target is JsonArray array)
        {
            var i = random.Next(array.Count);
            switch (random.Next(3))
            {
                case 0: array.RemoveAt(i); break;
                case 1: array[i] = Pick(); break;
                default: array.Insert(i, array[i]?.DeepClone()); break;
            }
        }
        return root;
    }

    /// Mutated text: JSON-aware changes most of the time, raw byte damage sometimes.
    private static byte[] MutateJson(string json, Random random)
    {
        var root = JsonNode.Parse(json)!;
        for (int k = random.Next(1, 4); k > 0; k--) root = Mutate(root, random);
        var bytes = Encoding.UTF8.GetBytes(root.ToJsonString());
        switch (random.Next(6))
        {
            case 0: return bytes[..random.Next(bytes.Length)];                                  // truncated
            case 1: bytes[random.Next(bytes.Length)] = (byte)random.Next(256); return bytes;    // one byte flipped
            default: return bytes;
        }
    }

    [Fact]
    public void MutatedConfigsLoadOrFailCleanly()
    {
        var source = TinyChatModels.Create("llama");
        var original = File.ReadAllText(Path.Combine(source, "config.json"));
        var random = new Random(1);
        for (int i = 0; i < 150; i++)
        {
            var dir = TestPaths.TempDir();
            foreach (var f in Directory.GetFiles(source)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            var mutated = MutateJson(original, random);
            File.WriteAllBytes(Path.Combine(dir, "config.json"), mutated);
            Survives(() => TextGenerator.Load(dir).Dispose(), $"config case {i} ({Encoding.UTF8.GetString(mutated)})");
        }
        var deepSeek = TinyModels.ConfigJson().ToJsonString();
        for (int i = 0; i < 100; i++)
        {
            var bytes = MutateJson(deepSeek, random);
            Survives(() =>
            {
                var config = R1Sharp.Models.ModelConfig.Parse(Encoding.UTF8.GetString(bytes));
                ModelIO.Create(config).Dispose();
            }, $"DeepSeek config case {i} ({Encoding.UTF8.GetString(bytes)})");
        }
    }

    [Fact]
    public void MutatedSafetensorsHeadersLoadOrFailCleanly()
    {
        var source = TinyChatModels.Create("llama");
        var weights = File.ReadAllBytes(Path.Combine(source, "model.safetensors"));
        var headerLength = (int)BitConverter.ToInt64(weights, 0);
        var header = Encoding.UTF8.GetString(weights, 8, headerLength);
        var data = weights[(8 + headerLength)..];
        var random = new Random(2);
        for (int i = 0; i < 150; i++)
        {
            var dir = TestPaths.TempDir();
            foreach (var f in Directory.GetFiles(source)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            var mutated = MutateJson(header, random);
            var length = random.Next(10) == 0 ? random.Next(-5, mutated.Length + 50) : mutated.Length;
            File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), [.. BitConverter.GetBytes((long)length), .. mutated, .. data]);
            Survives(() => ModelIO.Load(dir).Dispose(), $"safetensors case {i}");
        }
    }

    [Fact]
    public void MutatedTokenizersLoadOrFailCleanly()
    {
        var dir = TestPaths.TempDir();
        ByteTokenizer.Instance.Save(dir);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer.json")))!.AsObject();
        // Give the byte tokenizer some merges, a split pattern and stripping tokens, so mutations reach them.
        var vocab = json["model"]!["vocab"]!.AsObject();
        vocab["he"] = 265; vocab["ll"] = 266; vocab["hell"] = 267;
        json["model"]!["merges"] = new JsonArray("h e", "l l", "he ll");
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = "\\p{N}{1,3}| ?\\p{L}+|\\s+" }, ["behavior"] = "Isolated" },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
        };
        json["added_tokens"]![3]!["lstrip"] = true;
        json["normalizer"] = new JsonObject { ["type"] = "NFC" };
        var original = json.ToJsonString();
        var config = File.ReadAllText(Path.Combine(dir, "tokenizer_config.json"));
        var random = new Random(3);
        for (int i = 0; i < 150; i++)
        {
            var caseDir = TestPaths.TempDir();
            File.WriteAllBytes(Path.Combine(caseDir, "tokenizer.json"), MutateJson(original, random));
            File.WriteAllBytes(Path.Combine(caseDir, "tokenizer_config.json"), random.Next(3) == 0 ? MutateJson(config, random) : Encoding.UTF8.GetBytes(config));
            Survives(() =>
            {
                var tokenizer = PretrainedTokenizer.Load(caseDir);
                var ids = tokenizer.Encode("hello <|user|> 12345 wörld 🤗\n\n", addSpecialTokens: true);
                tokenizer.Decode(ids);
                tokenizer.Decode(ids, skipSpecialTokens: true);
                if (tokenizer.ChatTemplate is not null) ChatTemplate.For(tokenizer).Render([new ChatTurn("user", "hi")], true, tokenizer);
            }, $"tokenizer case {i}");
        }
    }

    private static readonly string[] Fragments =
    [
        "{%", "%}", "{{", "}}", "{#", "#}", "{%-", "-%}", "(", ")", "[", "]", "{", "}", "|", "'", "\"", ",", ".", ":", "~", "**", "//",
        "{% for m in messages %}", "{% endfor %}", "{% if x %}", "{% elif y %}", "{% else %}", "{% endif %}", "{% set ns = namespace(a=1) %}",
        "{% set ns.a = ns %}", "{{ ns | tojson }}", "{% macro m(a, b=2) %}{{ a ~ b }}{% endmacro %}", "{{ m(1) }}", "{% break %}", "{% continue %}",
        "{{ range(99999999) | length }}", "{{ 'ab' * 99999999 }}", "{{ 9223372036854775807 * 2 }}", "{{ 1 // 0 }}", "{{ x | tojson(indent=99999999) }}",
        "{{ messages[0]['content'] }}", "{{ messages | selectattr('role', 'equalto', 'user') | list }}", "{{ loop.index }}", "{{ raise_exception('no') }}",
        "{{ '{}{'.format(1) }}", "{{ 'a' | indent(-3) }}", "{{ 1.5 | round(999) }}", "{{ 3 is divisibleby 0 }}", "{{ x.y.z }}", "{{ none.attr }}",
        "{% generation %}", "{% endgeneration %}", "{{ strftime_now('%d %b') }}", "{{ messages[-99] }}", "{{ 'x'[::0] }}", "\u0000", "\n",
    ];

    [Fact]
    public void MutatedChatTemplatesRenderOrFailCleanly()
    {
        var tokenizer = PretrainedTokenizer.Load(TestPaths.ReferenceTokenizer("qwen2_5"));
        var baseTemplate = tokenizer.ChatTemplate!;
        var messages = new JsonArray(
            new JsonObject { ["role"] = "system", ["content"] = "Be brief." },
            new JsonObject { ["role"] = "user", ["content"] = "Is 1001 prime?" },
            new JsonObject { ["role"] = "assistant", ["content"] = "No: 7 × 11 × 13." },
            new JsonObject { ["role"] = "user", ["content"] = "Why?" });
        var random = new Random(4);
        for (int i = 0; i < 250; i++)
        {
            var template = new StringBuilder(random.Next(3) == 0 ? "" : baseTemplate);
            for (int k = random.Next(1, 6); k > 0; k--)
            {
                var at = random.Next(template.Length + 1);
                switch (random.Next(3))
                {
                    case 0: template.Insert(at, Fragments[random.Next(Fragments.Length)]); break;
                    case 1: if (template.Length > 0) template.Remove(Math.Min(at, template.Length - 1), Math.Min(random.Next(1, 20), template.Length - Math.Min(at, template.Length - 1))); break;
                    default: template.Insert(at, (char)random.Next(32, 127)); break;
                }
            }
            var source = template.ToString();
            Survives(() => ChatTemplate.Parse(source).Render(messages, addGenerationPrompt: random.Next(2) == 0, tokenizer), $"template case {i}");
        }
    }
}
