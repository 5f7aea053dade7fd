namespace R1Sharp;

/// An error caused by the user's input (a file, a config, a request): shown as one line, never a stack trace.
public class R1SharpException(string message, Exception? inner = null) : Exception(message, inner);

/// A prompt that cannot fit the context: `Tokens` is its length, or a lower bound on it when the text
/// was refused before tokenising (`AtLeast`).
public sealed class PromptTooLongException(long tokens, int limit, bool atLeast)
    : R1SharpException($"the prompt has {(atLeast ? "at least " : "")}{tokens} tokens; at most {limit} fit the context")
{
    public long Tokens { get; } = tokens;
    public int Limit { get; } = limit;
    public bool AtLeast { get; } = atLeast;
}
