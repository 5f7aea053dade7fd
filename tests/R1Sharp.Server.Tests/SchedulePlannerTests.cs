using System.Diagnostics;
using R1Sharp.Generation;
using R1Sharp.Server.Scheduling;

namespace R1Sharp.Server.Tests;

/// The scheduler's policy without a model: admission order, row accounting, timeouts, chunked prefill
/// within the budget, and Triton's preferred-batch wait.
public class SchedulePlannerTests
{
    private static Sequence Request(int promptTokens, int priority = 0, CancellationToken aborted = default) =>
        new(Enumerable.Range(1, promptTokens).ToArray(), SamplingOptions.GreedyDecoding(8), 8, priority, aborted);

    private static long Later(double seconds) => Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);

    [Fact]
    public void WaitingRequestsFillFreeRowsByPriorityThenArrival()
    {
        var first = Request(3, priority: 5);
        var urgent = Request(3, priority: -1);
        var second = Request(3, priority: 5);
        var decision = SchedulePlanner.Plan([], [first, urgent, second], freeRows: 2, prefillBudget: 100, queueTimeoutSeconds: 60, Later(0));
        Assert.Equal([urgent, first], decision.Admit);
        Assert.Empty(decision.Abort);
        Assert.Equal([urgent.Generation, first.Generation], decision.Plan.Prefill.Select(p => p.Sequence));
        Assert.Empty(decision.Plan.Decode);
    }

    [Fact]
    public void CancelledSequencesFreeTheirRowsInTheSameStep()
    {
        using var gone = new CancellationTokenSource();
        var running = Request(3, aborted: gone.Token);
        var waiting = Request(3);
        gone.Cancel();
        var decision = SchedulePlanner.Plan([running], [waiting], freeRows: 0, prefillBudget: 100, queueTimeoutSeconds: 60, Later(0));
        Assert.Equal([running], decision.Abort);
        Assert.Equal([waiting], decision.Admit);
    }

    [Fact]
    public void RequestsThatWaitedTooLongTimeOut()
    {
        var old = Request(3);
        var decision = SchedulePlanner.Plan([], [old], freeRows: 0, prefillBudget: 100, queueTimeoutSeconds: 1, Later(2));
        Assert.Equal([old], decision.TimedOut);
        Assert.Empty(decision.Admit);
        Assert.Empty(SchedulePlanner.Plan([], [old], 0, 100, 5, Later(2)).TimedOut);
    }

    [Fact]
    public void PrefillIsChunkedWithinTheBudgetInAdmissionOrder()
    {
        var a = Request(10);
        var b = Request(4);
        var c = Request(6);
        var decision = SchedulePlanner.Plan([], [a, b, c], freeRows: 3, prefillBudget: 12, queueTimeoutSeconds: 60, Later(0));
        Assert.Equal([(a.Generation, 10), (b.Generation, 2)], decision.Plan.Prefill);   // c waits for the next step's budget
        var tiny = SchedulePlanner.Plan([], [a], freeRows: 1, prefillBudget: 0, queueTimeoutSeconds: 60, Later(0));
        Assert.Equal([(a.Generation, 1)], tiny.Plan.Prefill);                          // at least one token per step
    }

    [Fact]
    public void AnIdleSchedulerWaitsForAPreferredBatchUpToTheDelay()
    {
        var one = Request(3);
        Assert.NotNull(SchedulePlanner.HoldForPreferredBatch(0, [one], 500, [4], Later(0)));
        Assert.Null(SchedulePlanner.HoldForPreferredBatch(0, [one], 500, [4], Later(1)));                 // waited long enough
        Assert.Null(SchedulePlanner.HoldForPreferredBatch(1, [one], 500, [4], Later(0)));                 // something is running
        Assert.Null(SchedulePlanner.HoldForPreferredBatch(0, [one, Request(3), Request(3), Request(3)], 500, [4], Later(0)));
    }
}
