using System.Diagnostics;
using R1Sharp.Generation;
using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Server.Scheduling;

/// The request was refused before it was queued (429 when the queue is full, 503 while shutting down).
public sealed class AdmissionException(int status, string message, string code) : Exception(message)
{
    public int Status { get; } = status;
    public string Code { get; } = code;
}

/// Continuous batching. One worker thread owns the model: at every step it drops cancelled and
/// timed-out sequences, admits waiting ones into free KV-cache rows (prefilling them together), and
/// decodes one token for every running sequence in a single batched forward.
public sealed class BatchScheduler : IDisposable
{
    private readonly CausalLM _model;
    private readonly ServerOptions _options;
    private readonly ServerMetrics _metrics;
    private readonly KvCache _cache;
    private readonly Sequence?[] _slots;
    private readonly PriorityQueue<Sequence, (int Priority, long Arrival)> _waiting = new();
    private readonly object _lock = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _worker;
    private readonly Generator _shared = new((ulong)Random.Shared.NextInt64());
    private readonly long[] _eos;
    private volatile bool _accepting = true;
    private volatile bool _stopping;

    public BatchScheduler(CausalLM model, IEnumerable<int> eosIds, ServerOptions options, ServerMetrics metrics)
    {
        _model = model;
        _options = options;
        _metrics = metrics;
        MaxContext = Math.Min(options.MaxContext ?? model.Config.MaxPositionEmbeddings, model.Config.MaxPositionEmbeddings);
        _cache = model.CreateCache(options.MaxBatch, MaxContext);
        _slots = new Sequence?[options.MaxBatch];
        _eos = eosIds.Select(i => (long)i).Distinct().ToArray();
        metrics.KvCacheBytesAllocated = _cache.Bytes;
        metrics.WeightBytes = (long)model.MemoryBytes;
        _worker = new Thread(Run) { IsBackground = true, Name = "r1sharp-scheduler" };
        _worker.Start();
    }

    /// Tokens a sequence may hold (prompt + completion).
    public int MaxContext { get; }
    public int Running => _slots.Count(s => s is not null);
    /// Tensors alive on the scheduler thread after its last step (flat over time, or memory leaks).
    public long LiveTensors { get; private set; }

    public Sequence Submit(int[] prompt, SamplingOptions options, int maxTokens, int priority, CancellationToken requestAborted, bool ignoreEos = false)
    {
        var sequence = new Sequence(prompt, options, maxTokens, priority, requestAborted, ignoreEos);
        lock (_lock)
        {
            if (!_accepting) throw new AdmissionException(503, "the server is shutting down", "server_shutting_down");
            if (_waiting.Count >= _options.MaxQueue + FreeSlots())
                throw new AdmissionException(429, $"the server is busy: {_waiting.Count} requests are waiting (max queue {_options.MaxQueue}); retry later", "queue_full");
            _waiting.Enqueue(sequence, (priority, sequence.Arrival));
            _metrics.Waiting = _waiting.Count;
        }
        _wake.Release();
        return sequence;
    }

    private int FreeSlots() => _slots.Count(s => s is null);

    private void Run()
    {
        while (!_stopping)
        {
            try
            {
                if (Running == 0 && WaitingCount() == 0) { _wake.Wait(100); continue; }
                if (HoldForPreferredBatch(out var wait)) { _wake.Wait(wait); continue; }
                Step();
            }
            catch (Exception e)
            {
                // A failed step ends the sequences in it with an error; the server keeps serving.
                foreach (var s in _slots.OfType<Sequence>()) Release(s, "error", e.Message);
            }
        }
        foreach (var s in _slots.OfType<Sequence>()) Release(s, "abort", "the server shut down");
        lock (_lock) while (_waiting.TryDequeue(out var s, out _)) s.Finish("abort", "the server shut down");
    }

    private int WaitingCount() { lock (_lock) return _waiting.Count; }

    /// Triton's dynamic batching: an idle scheduler may wait up to the maximum queue delay for the
    /// queue to reach a preferred batch size before it starts.
    private bool HoldForPreferredBatch(out TimeSpan wait)
    {
        wait = TimeSpan.Zero;
        if (Running > 0 || _options.MaxQueueDelayMs <= 0 || _options.PreferredBatchSizes.Length == 0) return false;
        lock (_lock)
        {
            if (_waiting.Count == 0 || _options.PreferredBatchSizes.Contains(_waiting.Count) || _waiting.Count >= _options.PreferredBatchSizes.Max()) return false;
            var oldest = _waiting.UnorderedItems.Min(i => i.Element.Arrival);
            var remaining = _options.MaxQueueDelayMs - Stopwatch.GetElapsedTime(oldest).TotalMilliseconds;
            if (remaining <= 0) return false;
            wait = TimeSpan.FromMilliseconds(remaining);
            return true;
        }
    }

    private void Step()
    {
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            DropCancelled();
            Admit();
            var prefilling = _slots.OfType<Sequence>().Where(s => s.Prefilled < s.Prompt.Length).OrderBy(s => s.Arrival).ToList();
            var ready = _slots.OfType<Sequence>().Where(s => !s.Finished && s.Generated.Count > 0).ToList();
            if (prefilling.Count > 0) Prefill(prefilling);
            if (ready.Count > 0) Decode(ready.Where(s => !s.Finished).ToList());
            UpdateGauges();
        }
        LiveTensors = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
    }

    private void DropCancelled()
    {
        foreach (var s in _slots.OfType<Sequence>().Where(s => s.Cancelled).ToList()) Release(s, "abort");
        lock (_lock)
        {
            if (_waiting.UnorderedItems.All(i => !i.Element.Cancelled && !TimedOut(i.Element))) return;
            var keep = _waiting.UnorderedItems.ToList();
            _waiting.Clear();
            foreach (var (s, priority) in keep)
            {
                if (s.Cancelled) s.Finish("abort");
                else if (TimedOut(s)) s.Finish("timeout", $"the request waited {_options.QueueTimeoutSeconds:0.#} s for a free slot (queue timeout); retry later");
                else _waiting.Enqueue(s, priority);
            }
        }
    }

    private bool TimedOut(Sequence s) => Stopwatch.GetElapsedTime(s.Arrival).TotalSeconds > _options.QueueTimeoutSeconds;

    private void Admit()
    {
        lock (_lock)
        {
            for (int slot = 0; slot < _slots.Length && _waiting.Count > 0; slot++)
            {
                if (_slots[slot] is not null) continue;
                var s = _waiting.Dequeue();
                s.Slot = slot;
                _slots[slot] = s;
                _cache.Reset(slot);
                _metrics.QueueTime.Record(Stopwatch.GetElapsedTime(s.Arrival).TotalSeconds);
            }
            _metrics.Waiting = _waiting.Count;
        }
    }

    /// Chunked prefill: the next piece of every prompt still being prefilled, in one right-padded forward,
    /// within `MaxPrefillTokens` per step (the oldest first; at least one token each step), so a long
    /// prompt does not stall the decoding of the others. A sequence whose prompt is complete gets its
    /// first token.
    private void Prefill(List<Sequence> prefilling)
    {
        var budget = Math.Max(1, _options.MaxPrefillTokens);
        var chunks = new List<(Sequence Sequence, int Start, int Length)>();
        foreach (var s in prefilling)
        {
            var length = Math.Min(s.Prompt.Length - s.Prefilled, budget);
            if (length <= 0) break;
            chunks.Add((s, s.Prefilled, length));
            budget -= length;
        }
        var longest = chunks.Max(c => c.Length);
        var ids = new long[chunks.Count * longest];
        for (int r = 0; r < chunks.Count; r++)
            for (int t = 0; t < chunks[r].Length; t++) ids[r * longest + t] = chunks[r].Sequence.Prompt[chunks[r].Start + t];
        var lengths = chunks.Select(c => (long)c.Length).ToArray();
        var view = _cache.Rows(chunks.Select(c => c.Sequence.Slot).ToArray());
        var last = _model.Forward(tensor(ids, device: _model.Device).view(chunks.Count, longest), view, lengths, lastOnly: true).squeeze(1);
        var complete = new List<int>();
        for (int r = 0; r < chunks.Count; r++)
        {
            var (s, _, length) = chunks[r];
            s.Prefilled += length;
            _metrics.PromptTokens.Add(length);
            if (s.Prefilled == s.Prompt.Length) complete.Add(r);
        }
        if (complete.Count == 0) return;
        var rows = tensor(complete.Select(r => (long)r).ToArray(), device: _model.Device);
        Accept(complete.Select(r => chunks[r].Sequence).ToList(), last.index_select(0, rows));
    }

    private void Decode(List<Sequence> running)
    {
        var view = _cache.Rows(running.Select(s => s.Slot).ToArray());
        var input = tensor(running.Select(s => s.Generated[^1]).ToArray(), device: _model.Device).view(running.Count, 1);
        using var trace = _model is DeepSeekForCausalLM ? new ForwardTrace() : null;
        var logits = _model.Forward(input, view, trace: trace);
        _metrics.BatchSize.Record(running.Count);
        if (trace is not null) CountExperts(trace);
        Accept(running, logits[.., -1]);
    }

    /// Samples each sequence's next token, hands it to its request, and retires finished sequences.
    private void Accept(List<Sequence> sequences, Tensor logits)
    {
        var rows = sequences.Select(s => new SamplingRow(s.Options, s.Seeded, s.Prompt, s.Generated)).ToList();
        var next = BatchSampler.Sample(logits, rows, _shared);
        var now = Stopwatch.GetTimestamp();
        for (int i = 0; i < sequences.Count; i++)
        {
            var s = sequences[i];
            if (!s.IgnoreEos && _eos.Contains(next[i])) { Release(s, "stop"); continue; }
            s.Generated.Add(next[i]);
            if (s.Generated.Count == 1) _metrics.TimeToFirstToken.Record(Stopwatch.GetElapsedTime(s.Arrival, now).TotalSeconds);
            else _metrics.InterTokenLatency.Record(Stopwatch.GetElapsedTime(s.LastTokenAt, now).TotalSeconds);
            s.LastTokenAt = now;
            _metrics.GenerationTokens.Add(1);
            s.Emit(next[i]);
            if (s.Generated.Count >= s.MaxTokens || s.Prompt.Length + s.Generated.Count >= MaxContext) Release(s, "length");
        }
    }

    private void Release(Sequence s, string reason, string? error = null)
    {
        if (s.Slot >= 0 && _slots[s.Slot] == s) _slots[s.Slot] = null;
        if (reason is "stop" or "length") _metrics.EndToEnd.Record(Stopwatch.GetElapsedTime(s.Arrival).TotalSeconds);
        _metrics.FinishedSequences.Add(1, new KeyValuePair<string, object?>("finished_reason", reason));
        s.Finish(reason, error);
    }

    private void CountExperts(ForwardTrace trace)
    {
        foreach (var (layer, experts, _) in trace.Routing)
        {
            var counts = experts.flatten().bincount(null).cpu().data<long>().ToArray();
            for (int e = 0; e < counts.Length; e++)
                if (counts[e] > 0) _metrics.ExpertTokens.Add(counts[e], new("layer", layer), new("expert", e));
        }
    }

    private void UpdateGauges()
    {
        var running = _slots.OfType<Sequence>().ToList();
        _metrics.Running = running.Count;
        var bytes = running.Sum(s => _cache.BytesFor(s.Prompt.Length + s.Generated.Count));
        _metrics.KvCacheUsage = bytes / (double)_cache.Bytes;
        _metrics.KvCacheBytesInUse = bytes;
    }

    /// Stops admitting; running and waiting requests get until `deadline` to finish, then are aborted.
    public async Task DrainAsync(TimeSpan deadline)
    {
        _accepting = false;
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < deadline && (Running > 0 || WaitingCount() > 0)) await Task.Delay(20).ConfigureAwait(false);
        _stopping = true;
        _wake.Release();
        _worker.Join();
    }

    public void Dispose()
    {
        if (!_stopping)
        {
            _stopping = true;
            _wake.Release();
            _worker.Join();
        }
        _cache.Dispose();
        _wake.Dispose();
    }
}
