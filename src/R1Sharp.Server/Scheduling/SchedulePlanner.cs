using System.Diagnostics;
using R1Sharp.Generation;

namespace R1Sharp.Server.Scheduling;

/// One scheduler step's decisions: sequences to drop (client gone), waiting requests that timed out,
/// waiting requests to admit into free rows, and what the engine runs.
public sealed record ScheduleDecision(IReadOnlyList<Sequence> Abort, IReadOnlyList<Sequence> TimedOut, IReadOnlyList<Sequence> Admit, StepPlan Plan);

/// The scheduler's policy, apart from the model (vLLM's `schedule()`): pure functions of the running and
/// waiting sequences and the clock, so they are tested without a model.
public static class SchedulePlanner
{
    /// Waiting requests in the order they are admitted: lower priority value first, then arrival.
    public static List<Sequence> AdmissionOrder(IEnumerable<Sequence> waiting) =>
        waiting.OrderBy(s => s.Priority).ThenBy(s => s.Arrival).ThenBy(s => s.Number).ToList();

    /// Drops cancelled sequences, times out requests that waited too long, fills free rows in admission
    /// order, prefills the next piece of every admitted-but-unfilled prompt (in the same order, at most
    /// `prefillBudget` tokens in all, at least one token per step) and decodes every sequence past its prompt.
    public static ScheduleDecision Plan(IReadOnlyList<Sequence> running, IReadOnlyList<Sequence> waiting, int freeRows, int prefillBudget,
        double queueTimeoutSeconds, long now)
    {
        var abort = running.Where(s => s.Cancelled).ToList();
        var timedOut = new List<Sequence>();
        var admit = new List<Sequence>();
        var rows = freeRows + abort.Count;
        foreach (var s in AdmissionOrder(waiting))
        {
            if (s.Cancelled) abort.Add(s);
            else if (Stopwatch.GetElapsedTime(s.Arrival, now).TotalSeconds > queueTimeoutSeconds) timedOut.Add(s);
            else if (admit.Count < rows) admit.Add(s);
        }
        var live = running.Where(s => !s.Cancelled).Concat(admit).ToList();
        var prefill = new List<(DecodeSequence, int)>();
        var budget = Math.Max(1, prefillBudget);
        foreach (var s in AdmissionOrder(live.Where(s => s.Generation.Prefilling)))
        {
            var tokens = Math.Min(s.Generation.Prompt.Length - s.Generation.Prefilled, budget);
            if (tokens <= 0) break;
            prefill.Add((s.Generation, tokens));
            budget -= tokens;
        }
        var decode = live.Where(s => !s.Generation.Prefilling && !s.Generation.Finished).Select(s => s.Generation).ToList();
        return new ScheduleDecision(abort, timedOut, admit, new StepPlan(prefill, decode));
    }

    /// Triton's dynamic batching: an idle scheduler may wait up to `maxDelayMs` for the queue to reach a
    /// preferred batch size. Returns how long to wait, or null to start now.
    public static TimeSpan? HoldForPreferredBatch(int running, IReadOnlyList<Sequence> waiting, double maxDelayMs, IReadOnlyList<int> preferred, long now)
    {
        if (running > 0 || maxDelayMs <= 0 || preferred.Count == 0 || waiting.Count == 0) return null;
        if (preferred.Contains(waiting.Count) || waiting.Count >= preferred.Max()) return null;
        var remaining = maxDelayMs - Stopwatch.GetElapsedTime(waiting.Min(s => s.Arrival), now).TotalMilliseconds;
        return remaining > 0 ? TimeSpan.FromMilliseconds(remaining) : null;
    }
}
