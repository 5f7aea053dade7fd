using System.Diagnostics;
using System.Threading.Channels;
using R1Sharp.Generation;
using static TorchSharp.torch;

namespace R1Sharp.Server.Scheduling;

/// What the scheduler tells a request: a generated token, or the end (with a finish reason or an error).
public readonly record struct SequenceEvent(int? Token, string? FinishReason = null, string? Error = null);

/// One sequence in the scheduler: a prompt, its sampling options, its KV-cache slot while running,
/// and the channel its request reads tokens from.
public sealed class Sequence
{
    private readonly Channel<SequenceEvent> _events = Channel.CreateUnbounded<SequenceEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly CancellationTokenSource _cancel;

    public Sequence(int[] prompt, SamplingOptions options, int maxTokens, int priority, CancellationToken requestAborted, bool ignoreEos = false)
    {
        IgnoreEos = ignoreEos;
        Prompt = prompt.Select(i => (long)i).ToArray();
        Options = options;
        MaxTokens = maxTokens;
        Priority = priority;
        Seeded = options.Seed is long seed && !options.Greedy ? new Generator((ulong)seed) : null;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
    }

    public long[] Prompt { get; }
    public SamplingOptions Options { get; }
    public int MaxTokens { get; }
    public int Priority { get; }
    /// vLLM's `ignore_eos` (for benchmarks): generate max_tokens whatever the model says.
    public bool IgnoreEos { get; }
    public Generator? Seeded { get; }
    public List<long> Generated { get; } = [];
    public int Slot { get; set; } = -1;
    /// Prompt tokens already in the KV cache (chunked prefill).
    public int Prefilled { get; set; }
    public long Arrival { get; } = Stopwatch.GetTimestamp();
    public long LastTokenAt { get; set; }
    public string? FinishReason { get; private set; }

    public ChannelReader<SequenceEvent> Events => _events.Reader;
    public bool Cancelled => _cancel.IsCancellationRequested;
    public bool Finished => FinishReason is not null;

    /// The request no longer wants tokens (client gone, stop string seen): the slot is freed at the next step.
    public void Cancel()
    {
        try { _cancel.Cancel(); }
        catch (ObjectDisposedException) { }   // already finished
    }

    internal void Emit(long token) => _events.Writer.TryWrite(new SequenceEvent((int)token));

    internal void Finish(string reason, string? error = null)
    {
        if (Finished) return;
        FinishReason = reason;
        _events.Writer.TryWrite(new SequenceEvent(null, reason, error));
        _events.Writer.TryComplete();
        _cancel.Dispose();
    }
}
