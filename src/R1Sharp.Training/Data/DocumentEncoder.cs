using System.Security.Cryptography;
using System.Text.Json.Nodes;
using R1Sharp.Templates;
using R1Sharp.Tokenization;

namespace R1Sharp.Training.Data;

/// Turns training text into tokens and a loss mask for one tokenizer: R1Sharp's byte-level one (the
/// built-in default) or a model folder's `tokenizer.json` with its chat template.
public abstract class DocumentEncoder
{
    /// What the index and checkpoints record: "byte-level", or the sha256 of the tokenizer.json.
    public abstract string Identity { get; }
    public abstract int VocabSize { get; }
    /// Token ids augmentation may substitute, and the id masked spans are filled with.
    public abstract (int Low, int High, int Pad) AugmentationIds { get; }

    public abstract Document FromText(string text);

    /// A conversation: one document, learning only the assistant turns (or several, see ChatDocumentEncoder).
    public abstract IEnumerable<Document> FromMessages(JsonArray messages, string where);

    /// `{"prompt", "completion"}`: the prompt as a user turn, the completion learned as the assistant's answer.
    public IEnumerable<Document> FromPromptCompletion(string prompt, string completion, string where) =>
        FromMessages([new JsonObject { ["role"] = "user", ["content"] = prompt }, new JsonObject { ["role"] = "assistant", ["content"] = completion }], where);

    /// Writes the tokenizer files beside a prepared dataset or a checkpoint.
    public abstract void SaveTokenizer(string dir);

    public static DocumentEncoder Byte { get; } = new ByteDocumentEncoder();

    /// The folder's tokenizer (and chat template, needed for chat data); R1Sharp's byte format when it is R1Sharp's own.
    public static DocumentEncoder For(string tokenizerDir)
    {
        var tokenizer = PretrainedTokenizer.Load(tokenizerDir);
        if (ByteTokenizer.Is(tokenizer)) return Byte;
        return new ChatDocumentEncoder(tokenizer, tokenizerDir);
    }
}

public sealed class ByteDocumentEncoder : DocumentEncoder
{
    public override string Identity => "byte-level";
    public override int VocabSize => ByteTokenizer.VocabSize;
    public override (int Low, int High, int Pad) AugmentationIds => (ByteTokenizer.ByteOffset, ByteTokenizer.VocabSize, ByteTokenizer.Pad);
    public override Document FromText(string text) => Document.FromText(text);

    public override IEnumerable<Document> FromMessages(JsonArray messages, string where)
    {
        yield return Document.FromMessages(messages.Select(m => (Text(m, "role", where), Text(m, "content", where))).ToList());
    }

    internal static string Text(JsonNode? message, string key, string where) =>
        message is JsonObject o && o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s
            : throw new R1SharpException($"{where}: each message needs a string \"{key}\"");

    public override void SaveTokenizer(string dir) => ByteTokenizer.Instance.Save(dir);
}

/// A real tokenizer. Chat data is rendered with the model's chat template. Where the template marks
/// the assistant's text with `{% generation %}` blocks, those are learned. Otherwise the assistant turns
/// are found by rendering the conversation up to each assistant turn twice — with the generation
/// prompt (what the model sees before it answers) and with the turn itself — the difference is that
/// turn's learned span, end-of-turn token included. The pieces are tokenised one by one, so span
/// boundaries fall on token boundaries. A template that rewrites earlier turns (Qwen3 drops their
/// reasoning) makes that turn its own document: its prefix as context, its span learned. A template
/// that writes a turn unlike what follows its generation prompt (DeepSeek-R1's drops the reasoning
/// and its prompt already opens `<think>`) gets the turn as the model would generate it: the prompt,
/// then the content without what the prompt already wrote, then the end-of-sequence token.
public sealed class ChatDocumentEncoder(PretrainedTokenizer tokenizer, string dir) : DocumentEncoder
{
    private readonly ChatTemplate? _template = tokenizer.ChatTemplate is { } t ? ChatTemplate.Parse(t) : null;
    private string? _identity;

    public override string Identity => _identity ??= Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir, "tokenizer.json"))));
    public override int VocabSize => tokenizer.VocabSize;
    public override (int Low, int High, int Pad) AugmentationIds => (0, tokenizer.VocabSize, tokenizer.TokenToId(tokenizer.PadToken ?? "") ?? tokenizer.EosId ?? 0);

    /// Plain text: the tokenizer's own special tokens (BOS where it adds one), then the end-of-sequence token; all learned.
    public override Document FromText(string text)
    {
        var ids = tokenizer.Encode(text, addSpecialTokens: true).ToList();
        if (tokenizer.EosId is int eos && (ids.Count == 0 || ids[^1] != eos)) ids.Add(eos);
        var mask = Enumerable.Repeat((byte)1, ids.Count).ToArray();
        if (mask.Length > 0 && tokenizer.BosId is int bos && ids[0] == bos) mask[0] = 0;
        return new Document([.. ids], mask);
    }

    public override IEnumerable<Document> FromMessages(JsonArray messages, string where)
    {
        var template = _template ?? throw new R1SharpException($"{where}: chat data needs a chat_template in {Path.Combine(dir, "tokenizer_config.json")}");
        foreach (var m in messages)
        {
            var role = ByteDocumentEncoder.Text(m, "role", where);
            ByteDocumentEncoder.Text(m, "content", where);
            if (role is not ("system" or "user" or "assistant" or "tool")) throw new R1SharpException($"{where}: unknown role '{role}'");
        }
        string Render(int count, bool generationPrompt)
        {
            var part = new JsonArray(messages.Take(count).Select(n => n!.DeepClone()).ToArray());
            try { return template.Render(part, generationPrompt, tokenizer); }
            catch (R1SharpException e) { throw new R1SharpException($"{where}: {e.Message}"); }
        }

        // A template with {% generation %} blocks says itself what the assistant writes.
        (string Text, IReadOnlyList<(int Start, int End)> Generated) marked;
        try { marked = template.RenderWithGeneratedSpans(new JsonArray(messages.Select(n => n!.DeepClone()).ToArray()), false, tokenizer); }
        catch (R1SharpException e) { throw new R1SharpException($"{where}: {e.Message}"); }
        if (marked.Generated.Count > 0)
        {
            yield return Pieces(marked.Text, [.. marked.Generated]);
            yield break;
        }

        var full = marked.Text;
        var spans = new List<(int Start, int End)>();
        var own = new List<Document>();
        for (int i = 0; i < messages.Count; i++)
        {
            if (ByteDocumentEncoder.Text(messages[i], "role", where) != "assistant") continue;
            var prefix = Render(i, true);
            var turn = Render(i + 1, false);
            if (turn.StartsWith(prefix, StringComparison.Ordinal) && turn.Length > prefix.Length)
            {
                if (full.StartsWith(turn, StringComparison.Ordinal)) spans.Add((prefix.Length, turn.Length));
                else own.Add(Pieces(turn, [(prefix.Length, turn.Length)]));
                continue;
            }
            // The template writes the turn unlike what the model generates after the generation prompt
            // (DeepSeek-R1's drops the reasoning and its prompt opens <think>): learn what it would generate.
            if (turn == Render(i, false) || tokenizer.EosId is not int eos)
                throw new R1SharpException($"{where}: the chat template renders no assistant span for message {i + 1}");
            var answer = Continuation(prefix, ByteDocumentEncoder.Text(messages[i], "content", where));
            var document = Pieces(prefix + answer, [(prefix.Length, prefix.Length + answer.Length)]);
            own.Add(new Document([.. document.Tokens, eos], [.. document.LossMask, 1]));
        }
        if (spans.Count == 0 && own.Count == 0) throw new R1SharpException($"{where}: no assistant message to learn");
        if (spans.Count > 0) yield return Pieces(full, spans);
        foreach (var d in own) yield return d;
    }

    /// The content without what the generation prompt already wrote (`<think>\n` opened by it).
    private static string Continuation(string prompt, string content)
    {
        var p = prompt.TrimEnd();
        var c = content.TrimStart();
        for (int k = Math.Min(p.Length, c.Length); k > 0; k--)
            if (p.EndsWith(c[..k], StringComparison.Ordinal)) return c[k..].TrimStart('\n');
        return content;
    }

    /// Tokens of `text` piece by piece, learned inside the spans.
    private Document Pieces(string text, List<(int Start, int End)> spans)
    {
        var tokens = new List<int>();
        var mask = new List<byte>();
        int at = 0;
        void Add(int end, byte learned)
        {
            if (end <= at) return;
            var ids = tokenizer.Encode(text[at..end], addSpecialTokens: false);
            tokens.AddRange(ids);
            mask.AddRange(Enumerable.Repeat(learned, ids.Length));
            at = end;
        }
        foreach (var (start, end) in spans)
        {
            Add(start, 0);
            Add(end, 1);
        }
        Add(text.Length, 0);
        return new Document([.. tokens], [.. mask]);
    }

    public override void SaveTokenizer(string target) => PretrainedTokenizer.CopyFolderFiles(dir, target);
}
