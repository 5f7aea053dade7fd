using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Tokenization;

/// The byte-level tokenizer of R1Sharp's built-in corpus: special tokens first, then one id per byte.
/// It is written as a Hugging Face `tokenizer.json` (byte-level BPE without merges, specials as added
/// tokens), so Hugging Face tools read the same ids.
public sealed class ByteTokenizer
{
    public static readonly string[] SpecialTokens =
        ["<|pad|>", "<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>", "<think>", "</think>", "<answer>", "</answer>"];

    public const int Pad = 0, Bos = 1, Eos = 2, User = 3, Assistant = 4, ThinkOpen = 5, ThinkClose = 6, AnswerOpen = 7, AnswerClose = 8;
    public static int ByteOffset => SpecialTokens.Length;
    public static int VocabSize => ByteOffset + 256;

    public static ByteTokenizer Instance { get; } = new();

    /// Whether a loaded tokenizer.json is this one (R1Sharp's built-in models carry it).
    public static bool Is(PretrainedTokenizer t) =>
        t.VocabSize == VocabSize && SpecialTokens.Select((token, id) => t.TokenToId(token) == id).All(x => x);

    public int[] Encode(string text)
    {
        var ids = new List<int>(text.Length + 8);
        int start = 0;
        while (start < text.Length)
        {
            var (at, special) = NextSpecial(text, start);
            foreach (var b in Encoding.UTF8.GetBytes(text.AsSpan(start, at - start).ToString())) ids.Add(ByteOffset + b);
            if (special < 0) break;
            ids.Add(special);
            start = at + SpecialTokens[special].Length;
        }
        return [.. ids];
    }

    private static (int At, int Special) NextSpecial(string text, int start)
    {
        int best = text.Length, which = -1;
        for (int i = 0; i < SpecialTokens.Length; i++)
        {
            var at = text.IndexOf(SpecialTokens[i], start, StringComparison.Ordinal);
            if (at >= 0 && at < best) (best, which) = (at, i);
        }
        return (best, which);
    }

    /// Specials are written out unless skipped; bytes that do not form UTF-8 become U+FFFD.
    public string Decode(IEnumerable<long> ids, bool skipSpecial = false)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        void Flush() { text.Append(Encoding.UTF8.GetString(bytes.ToArray())); bytes.Clear(); }
        foreach (var id in ids)
        {
            if (id >= ByteOffset && id < VocabSize) { bytes.Add((byte)(id - ByteOffset)); continue; }
            Flush();
            if (id >= 0 && id < ByteOffset && !skipSpecial) text.Append(SpecialTokens[id]);
        }
        Flush();
        return text.ToString();
    }

    /// Hugging Face's GPT-2 byte-to-unicode table: printable bytes map to themselves, the rest to U+0100+.
    private static char[] ByteToUnicode()
    {
        var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToHashSet();
        var map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++) map[b] = printable.Contains(b) ? (char)b : (char)(256 + next++);
        return map;
    }

    /// The chat format R1Sharp trains on (Document.FromMessages): `<|bos|>`, then `<|user|>…` and
    /// `<|assistant|>…<|eos|>` turns; the generation prompt opens an assistant turn.
    public const string ChatTemplate =
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}{{ '<|assistant|>' + message['content'] + eos_token }}"
        + "{% else %}{{ '<|user|>' + message['content'] }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        var unicode = ByteToUnicode();
        var vocab = new JsonObject();
        for (int i = 0; i < ByteOffset; i++) vocab[SpecialTokens[i]] = i;
        for (int b = 0; b < 256; b++) vocab[unicode[b].ToString()] = ByteOffset + b;
        var added = new JsonArray(SpecialTokens.Select((t, i) => (JsonNode)new JsonObject
        {
            ["id"] = i, ["content"] = t, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
        }).ToArray());
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocab, ["merges"] = new JsonArray(),
            },
        };
        var options = new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        AtomicFile.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString(options) + "\n");
        var config = new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["bos_token"] = SpecialTokens[Bos], ["eos_token"] = SpecialTokens[Eos], ["pad_token"] = SpecialTokens[Pad],
            ["add_bos_token"] = false, ["model_max_length"] = 1 << 20,
            ["chat_template"] = ChatTemplate,
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString(options) + "\n");
    }
}
