using System.Diagnostics;
using System.Threading.Channels;
using R1Sharp.Generation;

namespace R1Sharp.Server.Scheduling;

/// What the scheduler tells a request: a generated token (with its log-probabilities when asked), or
/// the end (with a finish reason or an error).
public readonly record struct SequenceEvent(int? Token, string? FinishReason = null, string? Error = null, TokenLogprobs? Logprobs = null);

/// One request's sequence in the scheduler: the engine's generation state, its priority and arrival,
/// and the channel its request reads tokens from.
public sealed class Sequence
{
    private readonly Channel<SequenceEvent> _events = Channel.CreateUnbounded<SequenceEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly CancellationTokenSource _cancel;

    public Sequence(int[] prompt, SamplingOptions options, int maxTokens, int priority, CancellationToken requestAborted, bool ignoreEos = false)
    {
        Generation = new DecodeSequence(prompt.Select(i => (long)i).ToArray(), options, maxTokens, ignoreEos, options.Seed);
        Priority = priority;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
    }

    public DecodeSequence Generation { get; }
    public int Priority { get; }
    public long Arrival { get; } = Stopwatch.GetTimestamp();
    /// Orders requests that arrive in the same tick.
    public long Number { get; } = Interlocked.Increment(ref _count);
    private static long _count;
    public long LastTokenAt { get; set; }
    public string? FinishReason { get; private set; }

    public ChannelReader<SequenceEvent> Events => _events.Reader;
    public bool Cancelled => _cancel.IsCancellationRequested;
    public bool Finished => FinishReason is not null;

    /// The request no longer wants tokens (client gone, stop string seen): the row is freed at the next step.
    public void Cancel()
    {
        try { _cancel.Cancel(); }
        catch (ObjectDisposedException) { }   // already finished
    }

    internal void Emit(long token, TokenLogprobs? logprobs) => _events.Writer.TryWrite(new SequenceEvent((int)token, Logprobs: logprobs));

    internal void Finish(string reason, string? error = null)
    {
        if (Finished) return;
        FinishReason = reason;
        _events.Writer.TryWrite(new SequenceEvent(null, reason, error));
        _events.Writer.TryComplete();
        _cancel.Dispose();
    }
}
