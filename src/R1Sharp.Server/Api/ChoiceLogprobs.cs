using System.Text;
using System.Text.Json.Nodes;
using R1Sharp.Generation;
using R1Sharp.Tokenization;

namespace R1Sharp.Server.Api;

/// One choice's token log-probabilities in OpenAI's shapes: chat's `{"content": [{token, logprob,
/// bytes, top_logprobs}]}` and the completions API's `{tokens, token_logprobs, top_logprobs,
/// text_offset}`. Streamed, each chunk carries the tokens received since the previous chunk.
/// `tokensAsIds` (vLLM's `return_tokens_as_token_ids`) names tokens `token_id:N`, which a byte-level
/// token that is not a whole character cannot be confused by.
public sealed class ChoiceLogprobs(PretrainedTokenizer tokenizer, bool chat, bool tokensAsIds = false)
{
    private readonly List<(int Token, TokenLogprobs Logprobs)> _all = [];
    private int _sent;

    public void Add(int token, TokenLogprobs logprobs) => _all.Add((token, logprobs));

    /// The entries not yet sent, or null when there are none.
    public JsonObject? TakePending()
    {
        if (_sent == _all.Count) return null;
        var json = Json(_sent, _all.Count);
        _sent = _all.Count;
        return json;
    }

    public JsonObject All() => Json(0, _all.Count);

    private string Text(long id) => Encoding.UTF8.GetString(tokenizer.TokenBytes((int)id));

    private string Name(long id) => tokensAsIds ? $"token_id:{id}" : Text(id);

    private JsonObject Json(int from, int to)
    {
        var entries = _all.Skip(from).Take(to - from).ToList();
        if (chat)
        {
            JsonObject Entry(long id, float logprob) => new() { ["token"] = Name(id), ["logprob"] = logprob, ["bytes"] = new JsonArray(tokenizer.TokenBytes((int)id).Select(b => (JsonNode)(int)b).ToArray()) };
            return new JsonObject
            {
                ["content"] = new JsonArray(entries.Select(e =>
                {
                    var entry = Entry(e.Token, e.Logprobs.Logprob);
                    entry["top_logprobs"] = new JsonArray(e.Logprobs.TopIds.Select((id, i) => (JsonNode)Entry(id, e.Logprobs.TopLogprobs[i])).ToArray());
                    return (JsonNode)entry;
                }).ToArray()),
                ["refusal"] = null,
            };
        }
        // The legacy shape, as vLLM fills it: top_logprobs maps token text to logprob, the sampled token included.
        var offset = _all.Take(from).Sum(e => Text(e.Token).Length);
        var offsets = new JsonArray();
        foreach (var e in entries) { offsets.Add(offset); offset += Text(e.Token).Length; }
        return new JsonObject
        {
            ["tokens"] = new JsonArray(entries.Select(e => (JsonNode)Name(e.Token)).ToArray()),
            ["token_logprobs"] = new JsonArray(entries.Select(e => (JsonNode)e.Logprobs.Logprob).ToArray()),
            ["top_logprobs"] = new JsonArray(entries.Select(e =>
            {
                var top = new JsonObject();
                for (int i = 0; i < e.Logprobs.TopIds.Length; i++) top[Name(e.Logprobs.TopIds[i])] = e.Logprobs.TopLogprobs[i];
                top[Name(e.Token)] = e.Logprobs.Logprob;
                return (JsonNode)top;
            }).ToArray()),
            ["text_offset"] = offsets,
        };
    }
}
