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

/// Continuous batching. One worker thread owns the decode engine: at every step the planner decides
/// (drop cancelled and timed-out sequences, admit waiting ones into free rows by priority, prefill the
/// next piece of new prompts within the prefill budget, decode every running sequence) and the engine
/// runs that plan in one prefill and one decode forward; tokens go to each request's channel.
public sealed class BatchScheduler : IDisposable
{
    private readonly ServerOptions _options;
    private readonly ServerMetrics _metrics;
    private readonly DecodeEngine _engine;
    private readonly List<Sequence> _waiting = [];
    private readonly Dictionary<DecodeSequence, Sequence> _running = [];
    private readonly object _lock = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _worker;
    private readonly bool _countExperts;
    private volatile bool _accepting = true;
    private volatile bool _stopping;

    public BatchScheduler(CausalLM model, ServerOptions options, ServerMetrics metrics)
    {
        _options = options;
        _metrics = metrics;
        _engine = new DecodeEngine(model, options.MaxBatch, options.MaxContext ?? model.Config.MaxPositionEmbeddings);
        _countExperts = model is DeepSeekForCausalLM;
        metrics.KvCacheBytesAllocated = _engine.Cache.Bytes;
        metrics.WeightBytes = (long)model.MemoryBytes;
        _worker = new Thread(Run) { IsBackground = true, Name = "r1sharp-scheduler" };
        _worker.Start();
    }

    /// Tokens a sequence may hold (prompt + completion).
    public int MaxContext => _engine.MaxLength;
    public int Running { get { lock (_lock) return _running.Count; } }
    /// Tensors alive on the scheduler thread after its last step (flat over time, or memory leaks).
    public long LiveTensors { get; private set; }

    public Sequence Submit(int[] prompt, SamplingOptions options, int maxTokens, int priority, CancellationToken requestAborted, bool ignoreEos = false)
    {
        var sequence = new Sequence(prompt, options, maxTokens, priority, requestAborted, ignoreEos);
        lock (_lock)
        {
            if (!_accepting) throw new AdmissionException(503, "the server is shutting down", "server_shutting_down");
            if (_waiting.Count >= _options.MaxQueue + _options.MaxBatch - _running.Count)
                throw new AdmissionException(429, $"the server is busy: {_waiting.Count} requests are waiting (max queue {_options.MaxQueue}); retry later", "queue_full");
            _waiting.Add(sequence);
            _metrics.Waiting = _waiting.Count;
        }
        _wake.Release();
        return sequence;
    }

    private void Run()
    {
        while (!_stopping)
        {
            try
            {
                if (Idle()) { _wake.Wait(100); continue; }
                if (Hold() is { } wait) { _wake.Wait(wait); continue; }
                Step();
            }
            catch (Exception e)
            {
                // A failed step ends the sequences in it with an error; the server keeps serving.
                foreach (var s in RunningSnapshot()) Release(s, "error", e.Message);
            }
        }
        foreach (var s in RunningSnapshot()) Release(s, "abort", "the server shut down");
        lock (_lock)
        {
            foreach (var s in _waiting) s.Finish("abort", "the server shut down");
            _waiting.Clear();
        }
    }

    private bool Idle() { lock (_lock) return _running.Count == 0 && _waiting.Count == 0; }

    private List<Sequence> RunningSnapshot() { lock (_lock) return [.. _running.Values]; }

    private TimeSpan? Hold()
    {
        lock (_lock)
            return SchedulePlanner.HoldForPreferredBatch(_running.Count, _waiting, _options.MaxQueueDelayMs, _options.PreferredBatchSizes, Stopwatch.GetTimestamp());
    }

    private void Step()
    {
        ScheduleDecision decision;
        lock (_lock)
        {
            decision = SchedulePlanner.Plan([.. _running.Values], _waiting, _engine.FreeRows, _options.MaxPrefillTokens, _options.QueueTimeoutSeconds, Stopwatch.GetTimestamp());
            foreach (var s in decision.Abort.Concat(decision.TimedOut).Concat(decision.Admit)) _waiting.Remove(s);
            _metrics.Waiting = _waiting.Count;
        }
        foreach (var s in decision.Abort) Release(s, "abort");
        foreach (var s in decision.TimedOut) s.Finish("timeout", $"the request waited {_options.QueueTimeoutSeconds:0.#} s for a free slot (queue timeout); retry later");
        foreach (var s in decision.Admit)
        {
            try { _engine.Admit(s.Generation); }
            catch (R1SharpException e) { s.Finish("error", e.Message); continue; }   // this request's fault, not the others'
            lock (_lock) _running[s.Generation] = s;
            _metrics.QueueTime.Record(Stopwatch.GetElapsedTime(s.Arrival).TotalSeconds);
            if (s.Generation.Finished) Release(s, s.Generation.FinishReason!);
        }
        var plan = decision.Plan with
        {
            Prefill = decision.Plan.Prefill.Where(p => p.Sequence.Slot >= 0).ToList(),
        };

        using (var trace = _countExperts && plan.Decode.Count > 0 ? new ForwardTrace() : null)
        {
            var results = _engine.Step(plan, trace);
            foreach (var (_, tokens) in plan.Prefill) _metrics.PromptTokens.Add(tokens);
            if (plan.Decode.Count > 0) _metrics.BatchSize.Record(plan.Decode.Count);
            if (trace is not null) CountExperts(trace);
            Deliver(results);
        }
        UpdateGauges();
        LiveTensors = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
    }

    /// Hands each new token to its request and retires the sequences the engine finished.
    private void Deliver(IReadOnlyList<StepResult> results)
    {
        var now = Stopwatch.GetTimestamp();
        foreach (var (generation, token, logprobs) in results)
        {
            Sequence s;
            lock (_lock) s = _running[generation];
            if (token is long t)
            {
                var produced = generation.Generated.Count;
                if (produced == 1) _metrics.TimeToFirstToken.Record(Stopwatch.GetElapsedTime(s.Arrival, now).TotalSeconds);
                else _metrics.InterTokenLatency.Record(Stopwatch.GetElapsedTime(s.LastTokenAt, now).TotalSeconds);
                s.LastTokenAt = now;
                _metrics.GenerationTokens.Add(1);
                s.Emit(t, logprobs);
            }
            if (generation.Finished) Release(s, generation.FinishReason!);
        }
    }

    private void Release(Sequence s, string reason, string? error = null)
    {
        _engine.Release(s.Generation);
        lock (_lock) _running.Remove(s.Generation);
        if (reason is "stop" or "length") _metrics.EndToEnd.Record(Stopwatch.GetElapsedTime(s.Arrival).TotalSeconds);
        _metrics.FinishedSequences.Add(1, new KeyValuePair<string, object?>("finished_reason", reason));
        s.Finish(reason, error);
    }

    private void CountExperts(ForwardTrace trace)
    {
        using var scope = NewDisposeScope();
        foreach (var (layer, experts, _) in trace.Routing)
        {
            var counts = experts.flatten().bincount(null).cpu().data<long>().ToArray();
            for (int e = 0; e < counts.Length; e++)
                if (counts[e] > 0) _metrics.ExpertTokens.Add(counts[e], new("layer", layer), new("expert", e));
        }
    }

    private void UpdateGauges()
    {
        var running = RunningSnapshot();
        _metrics.Running = running.Count;
        var bytes = running.Sum(s => _engine.Cache.BytesFor(s.Generation.Length));
        _metrics.KvCacheUsage = bytes / (double)_engine.Cache.Bytes;
        _metrics.KvCacheBytesInUse = bytes;
    }

    /// Stops admitting; running and waiting requests get until `deadline` to finish, then are aborted.
    public async Task DrainAsync(TimeSpan deadline)
    {
        _accepting = false;
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < deadline && !Idle()) await Task.Delay(20).ConfigureAwait(false);
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
        _engine.Dispose();
        _wake.Dispose();
    }
}
