using R1Sharp.Generation;

namespace R1Sharp.Server.Api;

/// What both completion endpoints share: the model check, sampling parameters, n, stream, priority.
public sealed record GenerationRequest(SamplingOptions Sampling, int MaxTokens, int N, bool Stream, bool IncludeUsage, int Priority, bool IgnoreEos, bool TokensAsIds = false)
{
    /// `chat`: logprobs are chat's (`logprobs: true` and `top_logprobs` 0–20) or the completions API's (`logprobs`: 0–20 alternatives).
    public static GenerationRequest Read(RequestReader r, ServerOptions options, SamplingOptions defaults, bool chat)
    {
        var model = r.String("model");
        if (model is not null && model != options.ServedModelName)
            throw new ApiError(400, $"the model '{model}' does not exist; this server serves '{options.ServedModelName}'", "model", "model_not_found");
        var maxTokens = r.Integer("max_completion_tokens", 1, int.MaxValue) ?? r.Integer("max_tokens", 1, int.MaxValue) ?? options.DefaultMaxTokens;
        var s = defaults with { MaxNewTokens = (int)maxTokens, StopStrings = r.Stop(), Logprobs = Logprobs(r, chat) };
        if (r.Number("temperature", 0, 2) is double t) s = s with { Temperature = t };
        if (r.Number("top_p", 0, 1, minExclusive: true) is double p) s = s with { TopP = p };
        if (r.Integer("top_k", -1, int.MaxValue) is long k) s = s with { TopK = (int)Math.Max(0, k) };
        if (r.Number("min_p", 0, 1) is double minP) s = s with { MinP = minP };
        if (r.Number("repetition_penalty", 0, 10, minExclusive: true) is double rep) s = s with { RepetitionPenalty = rep };
        if (r.Number("presence_penalty", -2, 2) is double presence) s = s with { PresencePenalty = presence };
        if (r.Number("frequency_penalty", -2, 2) is double frequency) s = s with { FrequencyPenalty = frequency };
        if (r.Integer("seed", long.MinValue, long.MaxValue) is long seed) s = s with { Seed = seed };
        var n = (int)(r.Integer("n", 1, 16) ?? 1);
        if (n > options.MaxBatch + options.MaxQueue)
            throw ApiError.Invalid("n", $"n = {n} choices can never be admitted together: this server holds at most {options.MaxBatch + options.MaxQueue} sequences (max batch {options.MaxBatch} + max queue {options.MaxQueue})");
        var stream = r.Bool("stream") ?? false;
        var includeUsage = r.Object("stream_options") is { } so && new RequestReader(so).Bool("include_usage") == true;
        var priority = (int)(r.Integer("priority", int.MinValue, int.MaxValue) ?? 0);
        var ignoreEos = r.Bool("ignore_eos") ?? false;
        var tokensAsIds = r.Bool("return_tokens_as_token_ids") ?? false;
        return new GenerationRequest(s, (int)Math.Min(maxTokens, int.MaxValue), n, stream, includeUsage, priority, ignoreEos, tokensAsIds);
    }

    private static int? Logprobs(RequestReader r, bool chat)
    {
        const int max = SamplingOptions.MaxTopLogprobs;
        if (!chat) return (int?)r.Integer("logprobs", 0, max);
        var top = (int?)r.Integer("top_logprobs", 0, max);
        if (r.Bool("logprobs") != true)
            return top is null ? null : throw ApiError.Invalid("top_logprobs", "'top_logprobs' needs 'logprobs': true");
        return top ?? 0;
    }
}
