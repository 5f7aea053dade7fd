namespace R1Sharp.Cli;

/// A process started by `tune` (a trial or a worker) ends when its parent does: the parent holds the
/// write end of this process's stdin, the kernel closes it when the parent dies however it dies
/// (kill -9 included), and the read here returns end-of-file. Everything the runs write is atomic, so
/// stopping at any point loses nothing finished.
public static class ParentWatch
{
    public static void StartIfAsked()
    {
        if (Environment.GetEnvironmentVariable(R1Sharp.Training.Tuning.TrialProcess.ExitWithParentVariable) != "1" || !Console.IsInputRedirected) return;
        var stdin = Console.OpenStandardInput();
        new Thread(() =>
        {
            var buffer = new byte[256];
            try { while (stdin.Read(buffer) > 0) { } } catch (IOException) { }
            System.Diagnostics.Process.GetCurrentProcess().Kill();
        }) { IsBackground = true, Name = "parent watch" }.Start();
    }
}
