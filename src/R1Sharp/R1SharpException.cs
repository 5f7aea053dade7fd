namespace R1Sharp;

/// An error caused by the user's input (a file, a config, a request): shown as one line, never a stack trace.
public sealed class R1SharpException(string message, Exception? inner = null) : Exception(message, inner);
