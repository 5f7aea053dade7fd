using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Tokenization;

/// A model folder's tokenizer: `tokenizer.json` (byte-level BPE as DeepSeek-V3/R1, Qwen2 and Llama-3
/// ship it) plus `tokenizer_config.json` (bos/eos, add_bos_token, chat_template). Added tokens are
/// matched first, the rest normalized, pre-tokenized on code points, byte-mapped and merged as the
/// Rust tokenizers library merges (BpeModel). Thread-safe.
public sealed class PretrainedTokenizer
{
    // Merged pieces are cached only when short, and only up to a fixed number of characters in all,
    // so distinct long prompts never pile up in memory.
    private const int CachedPieceMaxLength = 256;
    private const long CacheMaxCharacters = 4_000_000;
    private readonly Dictionary<string, int> _vocab;
    private readonly ConcurrentDictionary<string, int[]> _cache = new();
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheBySpan;
    private long _cachedCharacters;
    private readonly BpeModel _bpe;
    private readonly bool _ignoreMerges;
    private readonly NormalizationForm? _normalization;
    private readonly PreTokenizer _preTokenizer;
    private readonly AddedTokenMatcher _matcher;
    private readonly Dictionary<string, int> _added;
    private readonly HashSet<int> _specialIds;
    private readonly string?[] _tokens;
    private readonly byte[]?[] _tokenBytes;
    private readonly int[] _prefix, _suffix;

    private PretrainedTokenizer(JsonElement root, JsonObject config, string source)
    {
        var model = root.GetProperty("model");
        if (model.TryGetProperty("type", out var type) && type.GetString() != "BPE")
            throw new R1SharpException($"{source}: model type {type.GetString()} is not supported (only byte-level BPE)");
        if (model.TryGetProperty("byte_fallback", out var fallback) && fallback.ValueKind == JsonValueKind.True)
            throw new R1SharpException($"{source}: byte_fallback BPE (SentencePiece style) is not supported (only byte-level BPE)");
        _vocab = new Dictionary<string, int>();
        foreach (var p in model.GetProperty("vocab").EnumerateObject()) _vocab[p.Name] = p.Value.GetInt32();
        _cacheBySpan = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
        var merges = model.GetProperty("merges").EnumerateArray().Select(m => Merge(m, source)).ToList();
        _ignoreMerges = model.TryGetProperty("ignore_merges", out var ignore) && ignore.ValueKind == JsonValueKind.True;
        var unknown = model.TryGetProperty("unk_token", out var unk) && unk.ValueKind == JsonValueKind.String ? unk.GetString() : null;
        _bpe = new BpeModel(_vocab, merges, unknown, source);

        var node = JsonNode.Parse(root.GetRawText())!.AsObject();
        _normalization = Normalization(node["normalizer"], source);
        _preTokenizer = PreTokenizer.FromJson(node["pre_tokenizer"]);
        if (!ContainsType(node["pre_tokenizer"], "ByteLevel") || !(node["decoder"] is null || ContainsType(node["decoder"], "ByteLevel")))
            throw new R1SharpException($"{source}: only byte-level BPE tokenizers are supported (pre_tokenizer and decoder must be ByteLevel)");

        var added = (node["added_tokens"]?.AsArray() ?? []).Select(t => AddedToken.FromJson(t!)).ToList();
        _matcher = new AddedTokenMatcher(added);
        _added = added.GroupBy(t => t.Content).ToDictionary(g => g.Key, g => g.Last().Id);
        _specialIds = added.Where(t => t.Special).Select(t => t.Id).ToHashSet();
        var size = TableSize(_vocab.Values.Concat(added.Select(t => t.Id)), _vocab.Count + added.Count, source);
        _tokens = new string?[size];
        foreach (var (token, id) in _vocab) _tokens[id] = token;
        foreach (var t in added) _tokens[t.Id] = t.Content;
        _tokenBytes = _tokens.Select(t => t is null ? null : ByteLevelAlphabet.Bytes(t) ?? Encoding.UTF8.GetBytes(t)).ToArray();
        _longestTokenBytes = Math.Max(1, _tokenBytes.Max(b => b?.Length ?? 0));
        _stripsWhitespace = added.Any(t => t.LeftStrip || t.RightStrip);

        BosToken = TokenString(config["bos_token"]);
        EosToken = TokenString(config["eos_token"]);
        PadToken = TokenString(config["pad_token"]);
        BosId = BosToken is null ? null : TokenToId(BosToken);
        EosId = EosToken is null ? null : TokenToId(EosToken);
        ChatTemplate = Template(config["chat_template"]);
        CleanUpTokenizationSpaces = (bool?)config["clean_up_tokenization_spaces"] ?? false;
        (_prefix, _suffix) = SpecialsAdded(node["post_processor"], config);
    }

    private readonly int _longestTokenBytes;
    private readonly bool _stripsWhitespace;

    /// Ids run from 0 to the highest one; ids far beyond the number of entries (a hostile or broken file)
    /// would make a huge table.
    private static int TableSize(IEnumerable<int> ids, int entries, string source)
    {
        var highest = -1;
        foreach (var id in ids)
        {
            if (id < 0) throw new R1SharpException($"{source}: token id {id} is negative");
            highest = Math.Max(highest, id);
        }
        if (highest >= (long)entries + 65536)
            throw new R1SharpException($"{source}: token id {highest} is far beyond the {entries} tokens the file defines");
        return highest + 1;
    }

    private static (string, string) Merge(JsonElement m, string source)
    {
        if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2) return (m[0].GetString()!, m[1].GetString()!);
        var text = m.GetString()!;
        var space = text.IndexOf(' ', 1);
        if (space < 0) throw new R1SharpException($"{source}: merge '{text}' is not two tokens separated by a space");
        return (text[..space], text[(space + 1)..]);
    }

    /// A lower bound on the tokens of `text` without tokenising it: no token covers more bytes than the
    /// longest one (normalization may shorten the text to a third, and whitespace may vanish into
    /// stripping added tokens).
    public long MinimumTokenCount(string text)
    {
        long bytes = 0;
        foreach (var rune in text.EnumerateRunes())
            if (!_stripsWhitespace || !Rune.IsWhiteSpace(rune)) bytes += rune.Utf8SequenceLength;
        var perToken = (long)_longestTokenBytes * (_normalization is null ? 1 : 3);
        return (bytes + perToken - 1) / perToken;
    }

    public int VocabSize => _tokens.Length;
    public string? BosToken { get; }
    public string? EosToken { get; }
    public string? PadToken { get; }
    public int? BosId { get; }
    public int? EosId { get; }
    public string? ChatTemplate { get; }
    public bool CleanUpTokenizationSpaces { get; }

    /// The files that make a folder's tokenizer and generation defaults, copied with a model
    /// (`chat_template.jinja` is where recent transformers versions save the template).
    public static readonly string[] FolderFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", TemplateFile];

    private const string TemplateFile = "chat_template.jinja";

    /// Tokenizer files R1Sharp cannot read (sentencepiece, tiktoken, slow BPE vocabularies).
    private static readonly string[] OtherTokenizerFiles = ["tokenizer.model", "tiktoken.model", "vocab.json", "spiece.model"];

    /// Whether DIR has a tokenizer R1Sharp reads (tokenizer.json). A folder that has only another kind of
    /// tokenizer is an error rather than a folder without one: running it with the byte tokenizer would be silently wrong.
    public static bool InFolder(string dir)
    {
        if (File.Exists(Path.Combine(dir, "tokenizer.json"))) return true;
        if (OtherTokenizerFiles.FirstOrDefault(f => File.Exists(Path.Combine(dir, f))) is { } other)
            throw new R1SharpException($"{dir} has {other} but no tokenizer.json: R1Sharp reads Hugging Face's fast-tokenizer file (write it with transformers: AutoTokenizer.from_pretrained(dir).save_pretrained(dir))");
        return false;
    }

    public static void CopyFolderFiles(string from, string to)
    {
        foreach (var file in FolderFiles)
        {
            var source = Path.Combine(from, file);
            if (File.Exists(source) && Path.GetFullPath(source) != Path.GetFullPath(Path.Combine(to, file)))
                File.Copy(source, Path.Combine(to, file), overwrite: true);
        }
    }

    public static PretrainedTokenizer Load(string dir)
    {
        var file = Path.Combine(dir, "tokenizer.json");
        if (!File.Exists(file))
            throw new R1SharpException(Directory.Exists(dir) ? $"no tokenizer.json in {dir} (the model folder needs its tokenizer files)" : $"model directory not found: {dir}");
        var configFile = Path.Combine(dir, "tokenizer_config.json");
        JsonObject config = [];
        if (File.Exists(configFile))
        {
            try { config = JsonNode.Parse(InputFile.ReadText(configFile, 16 << 20)) as JsonObject ?? throw new R1SharpException($"{configFile}: not a JSON object"); }
            catch (JsonException e) { throw new R1SharpException($"{configFile}: not valid JSON ({e.Message})"); }
        }
        var templateFile = Path.Combine(dir, TemplateFile);
        if (config["chat_template"] is null && File.Exists(templateFile)) config["chat_template"] = InputFile.ReadText(templateFile, 16 << 20);
        try
        {
            using var document = JsonDocument.Parse(InputFile.ReadBytes(file, 512 << 20), new JsonDocumentOptions { MaxDepth = 256 });
            return new PretrainedTokenizer(document.RootElement, config, file);
        }
        catch (JsonException e) { throw new R1SharpException($"{file}: not valid JSON ({e.Message})"); }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException or NullReferenceException)
        {
            throw new R1SharpException($"{file}: not a Hugging Face tokenizer file ({e.Message})");
        }
    }

    public int? TokenToId(string token) =>
        _added.TryGetValue(token, out var added) ? added : _vocab.TryGetValue(token, out var id) ? id : null;

    public bool IsSpecial(int id) => _specialIds.Contains(id);

    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens) ids.AddRange(_prefix);
        foreach (var (start, length, token) in _matcher.Split(text))
        {
            if (token is not null) ids.Add(token.Id);
            else EncodeText(text.Substring(start, length), ids);
        }
        if (addSpecialTokens) ids.AddRange(_suffix);
        return [.. ids];
    }

    private void EncodeText(string text, List<int> ids)
    {
        if (_normalization is { } form && !text.IsNormalized(form)) text = text.Normalize(form);
        if (_preTokenizer.AddPrefixSpace && !text.StartsWith(' ')) text = " " + text;
        Span<char> buffer = stackalloc char[256];
        foreach (var (start, length) in _preTokenizer.Split(text, 0, text.Length))
        {
            var piece = text.AsSpan(start, length);
            var byteCount = Encoding.UTF8.GetMaxByteCount(length);
            var mapped = byteCount <= buffer.Length ? buffer : new char[byteCount];
            mapped = mapped[..ByteLevelMap(piece, mapped)];
            if (_ignoreMerges && _bpe.TryGetWhole(mapped, out var whole)) ids.Add(whole);
            else if (mapped.Length > CachedPieceMaxLength) _bpe.Encode(mapped, ids);
            else if (_cacheBySpan.TryGetValue(mapped, out var cached)) ids.AddRange(cached);
            else
            {
                var first = ids.Count;
                _bpe.Encode(mapped, ids);
                if (Interlocked.Read(ref _cachedCharacters) < CacheMaxCharacters && _cache.TryAdd(mapped.ToString(), ids[first..].ToArray()))
                    Interlocked.Add(ref _cachedCharacters, mapped.Length);
            }
        }
    }

    /// UTF-8 bytes of `piece` (unpaired surrogates become U+FFFD) as byte-level alphabet characters.
    private static int ByteLevelMap(ReadOnlySpan<char> piece, Span<char> output)
    {
        Span<byte> bytes = output.Length <= 512 ? stackalloc byte[output.Length] : new byte[output.Length];
        var n = Encoding.UTF8.GetBytes(piece, bytes);
        for (int i = 0; i < n; i++) output[i] = ByteLevelAlphabet.ByteToChar[bytes[i]];
        return n;
    }

    /// Text of `ids`. Special tokens are written out unless skipped; invalid UTF-8 becomes U+FFFD.
    /// `cleanUpSpaces` (default: the tokenizer_config setting) applies transformers' clean-up.
    /// `strict` false: ids the tokenizer does not know add nothing (a model's extra output rows), as Hugging Face decodes them.
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false, bool? cleanUpSpaces = null, bool strict = true)
    {
        var bytes = new List<byte>();
        foreach (var id in ids) AppendBytes(id, skipSpecialTokens, bytes, strict);
        var text = Encoding.UTF8.GetString(bytes.ToArray());
        return cleanUpSpaces ?? CleanUpTokenizationSpaces ? CleanUp(text) : text;
    }

    /// The bytes a token decodes to (special tokens: their text); empty for an id the tokenizer does not know.
    public byte[] TokenBytes(int id) => (uint)id < (uint)_tokenBytes.Length && _tokenBytes[id] is { } bytes ? bytes : [];

    /// `strict`: an id the tokenizer does not know is an error; otherwise it adds nothing, as Hugging Face
    /// decodes it (models often have a few more output rows than the tokenizer has tokens).
    internal void AppendBytes(int id, bool skipSpecialTokens, List<byte> bytes, bool strict = true)
    {
        if ((uint)id >= (uint)_tokenBytes.Length || _tokenBytes[id] is not { } tokenBytes)
        {
            if (!strict) return;
            throw new R1SharpException($"token id {id} is not in the tokenizer's vocabulary (0..{_tokenBytes.Length - 1})");
        }
        if (skipSpecialTokens && _specialIds.Contains(id)) return;
        bytes.AddRange(tokenBytes);
    }

    /// transformers' `clean_up_tokenization`: no space before punctuation and English contractions.
    public static string CleanUp(string text) => text
        .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
        .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");

    private static NormalizationForm? Normalization(JsonNode? node, string source)
    {
        if (node is null) return null;
        var type = (string?)node["type"];
        if (type == "Sequence")
        {
            var parts = (node["normalizers"]?.AsArray() ?? []).Select(n => Normalization(n, source)).Where(f => f is not null).ToList();
            if (parts.Count > 1) throw new R1SharpException($"{source}: a normalizer Sequence of more than one Unicode form is not supported");
            return parts.FirstOrDefault();
        }
        return type switch
        {
            "NFC" => NormalizationForm.FormC,
            "NFD" => NormalizationForm.FormD,
            "NFKC" => NormalizationForm.FormKC,
            "NFKD" => NormalizationForm.FormKD,
            _ => throw new R1SharpException($"{source}: normalizer {type} is not supported (NFC, NFD, NFKC, NFKD, Sequence)"),
        };
    }

    private static bool ContainsType(JsonNode? node, string type) => node switch
    {
        JsonObject o when (string?)o["type"] == type => true,
        JsonObject o => o.Any(p => p.Value is JsonArray a && a.Any(child => ContainsType(child, type))),
        _ => false,
    };

    /// Special tokens that `Encode(addSpecialTokens: true)` puts around the text: tokenizer_config's
    /// add_bos_token/add_eos_token when present (as LlamaTokenizerFast does), else the post_processor template.
    private (int[] Prefix, int[] Suffix) SpecialsAdded(JsonNode? postProcessor, JsonObject config)
    {
        if (config.ContainsKey("add_bos_token") || config.ContainsKey("add_eos_token"))
        {
            int[] Token(string key, string? token) => (bool?)config[key] == true && token is not null && TokenToId(token) is int id ? [id] : [];
            return (Token("add_bos_token", BosToken), Token("add_eos_token", EosToken));
        }
        var template = FindTemplate(postProcessor);
        if (template is null) return ([], []);
        var prefix = new List<int>();
        var suffix = new List<int>();
        var seenSequence = false;
        foreach (var item in template)
        {
            if (item?["Sequence"] is not null) { seenSequence = true; continue; }
            var name = (string?)item?["SpecialToken"]?["id"];
            if (name is null) continue;
            var ids = TemplateTokenIds(postProcessor, name) ?? (TokenToId(name) is int i ? [i] : []);
            (seenSequence ? suffix : prefix).AddRange(ids);
        }
        return ([.. prefix], [.. suffix]);
    }

    /// The ids a TemplateProcessing post-processor lists for a special token (its `special_tokens` map).
    private static int[]? TemplateTokenIds(JsonNode? node, string name) => node switch
    {
        JsonObject o when (string?)o["type"] == "TemplateProcessing" => o["special_tokens"]?[name]?["ids"]?.AsArray().Select(i => (int)i!).ToArray(),
        JsonObject o => (o["processors"]?.AsArray() ?? []).Select(p => TemplateTokenIds(p, name)).FirstOrDefault(ids => ids is not null),
        _ => null,
    };

    private static JsonArray? FindTemplate(JsonNode? node) => node switch
    {
        JsonObject o when (string?)o["type"] == "TemplateProcessing" => o["single"]?.AsArray(),
        JsonObject o when (string?)o["type"] == "Sequence" => (o["processors"]?.AsArray() ?? []).Select(FindTemplate).FirstOrDefault(t => t is not null),
        _ => null,
    };

    private static string? TokenString(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonObject o => (string?)o["content"],
        _ => null,
    };

    private static string? Template(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonArray a => a.Where(t => (string?)t?["name"] == "default").Select(t => (string?)t?["template"]).FirstOrDefault(),
        _ => null,
    };
}
