namespace R1Sharp.Generation;

/// A sampled token's log-probability and the most likely alternatives at its position (OpenAI's
/// `logprobs`): log-softmax of the logits after the repetition, presence and frequency penalties and
/// before temperature, top-k, top-p and min-p — the model's distribution, as vLLM reports it by default.
public sealed record TokenLogprobs(float Logprob, long[] TopIds, float[] TopLogprobs);
