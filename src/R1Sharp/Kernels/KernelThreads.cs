namespace R1Sharp.Kernels;

/// Splits a kernel over the machine's cores with as little latency as a decode step needs: the caller
/// runs the first part and one persistent worker per further core runs the others. Workers spin for a
/// few microseconds before they sleep, so back-to-back kernel calls of one token cost no wake-ups.
internal static class KernelThreads
{
    private static readonly Worker[] Workers = Enumerable.Range(1, Math.Max(1, Environment.ProcessorCount) - 1).Select(i => new Worker(i)).ToArray();
    private static readonly object Gate = new();

    public static int Count => Workers.Length + 1;

    /// Runs body(0) .. body(parts - 1), parts ≤ Count, and returns when all are done.
    public static void Run(int parts, Action<int> body)
    {
        if (parts <= 1 || Workers.Length == 0) { for (int p = 0; p < parts; p++) body(p); return; }
        // One caller at a time: a second thread runs its kernel on its own, rather than queueing behind.
        if (!Monitor.TryEnter(Gate)) { for (int p = 0; p < parts; p++) body(p); return; }
        try
        {
            var used = Math.Min(parts, Count) - 1;
            for (int w = 0; w < used; w++) Workers[w].Start(body, w + 1);
            body(0);
            Exception? failure = null;
            for (int w = 0; w < used; w++) failure ??= Workers[w].Wait();
            for (int p = Count; p < parts; p++) body(p);
            if (failure is not null) throw new AggregateException(failure);
        }
        finally
        {
            Monitor.Exit(Gate);
        }
    }

    private sealed class Worker
    {
        private readonly ManualResetEventSlim _start = new(false, spinCount: 2000);
        private readonly ManualResetEventSlim _done = new(false, spinCount: 2000);
        private Action<int>? _body;
        private int _part;
        private Exception? _failure;

        public Worker(int index) => new Thread(Loop) { IsBackground = true, Name = $"r1sharp-kernel-{index}" }.Start();

        public void Start(Action<int> body, int part)
        {
            (_body, _part, _failure) = (body, part, null);
            _done.Reset();
            _start.Set();
        }

        public Exception? Wait()
        {
            _done.Wait();
            return _failure;
        }

        private void Loop()
        {
            while (true)
            {
                _start.Wait();
                _start.Reset();
                try { _body!(_part); }
                catch (Exception e) { _failure = e; }
                _done.Set();
            }
        }
    }
}
