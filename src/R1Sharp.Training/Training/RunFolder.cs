using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Training.Training;

/// A run's folder while one trainer owns it: an exclusive lock (a second trainer on the same folder
/// fails at once; the kernel releases the lock of a killed process), temporary files of killed runs
/// removed, and metrics.jsonl appended a line at a time, read back tolerating a torn last line.
public sealed class RunFolder : IDisposable
{
    public const string LockFile = ".lock";
    private readonly FileStream _lock;

    private readonly bool _created;
    private readonly HashSet<string> _before;

    private RunFolder(string dir, FileStream lockStream, bool created, HashSet<string> before) => (Dir, _lock, _created, _before) = (dir, lockStream, created, before);

    public string Dir { get; }
    public string MetricsPath => Path.Combine(Dir, "metrics.jsonl");

    public static RunFolder Open(string dir)
    {
        var created = !Directory.Exists(dir);
        Directory.CreateDirectory(dir);
        var before = Directory.GetFileSystemEntries(dir).ToHashSet();
        FileStream lockStream;
        try
        {
            lockStream = new FileStream(Path.Combine(dir, LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new R1SharpException($"{dir}: another run is using this folder (it holds {LockFile}); wait for it or choose another --out");
        }
        RemoveStaleTemporaries(dir);
        return new RunFolder(dir, lockStream, created, before);
    }

    /// A run that failed before its first step leaves nothing behind: what this open added is removed
    /// (the folder too, when it made it), and the lock released.
    public void Abandon()
    {
        Dispose();
        foreach (var entry in Directory.GetFileSystemEntries(Dir).Where(e => !_before.Contains(e)))
        {
            if (Directory.Exists(entry)) Directory.Delete(entry, recursive: true);
            else File.Delete(entry);
        }
        if (_created && !Directory.EnumerateFileSystemEntries(Dir).Any()) Directory.Delete(Dir);
    }

    /// `*.tmp-PID` files and folders are half-written outputs; holding the lock, none of them is live.
    private static void RemoveStaleTemporaries(string dir)
    {
        foreach (var folder in new[] { dir, RunCheckpoints.Folder(dir) }.Where(Directory.Exists))
        {
            foreach (var d in Directory.GetDirectories(folder, "*.tmp-*")) Directory.Delete(d, recursive: true);
            foreach (var f in Directory.GetFiles(folder, "*.tmp-*")) File.Delete(f);
        }
    }

    public void AppendMetrics(JsonObject line)
    {
        using var stream = new FileStream(MetricsPath, FileMode.Append, FileAccess.Write, FileShare.Read);
        stream.Write(System.Text.Encoding.UTF8.GetBytes(line.ToJsonString() + "\n"));
    }

    /// Keeps the metrics of steps up to `step` (a resumed run rewrites what follows) and returns them.
    /// A last line cut short by a crash is dropped; a damaged line before it is an error naming it.
    public List<JsonObject> TruncateMetrics(int step)
    {
        if (!File.Exists(MetricsPath)) return [];
        var lines = File.ReadAllLines(MetricsPath);
        var kept = new List<JsonObject>();
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            JsonObject? line = null;
            try { line = JsonNode.Parse(lines[i]) as JsonObject; }
            catch (JsonException) { }
            if (line?["step"] is not JsonValue stepValue || !stepValue.TryGetValue<double>(out var lineStep))
            {
                if (i == lines.Length - 1) break;   // torn by a crash mid-append
                throw new R1SharpException($"{MetricsPath}: line {i + 1} is not a metrics record");
            }
            if (lineStep <= step) kept.Add(line);
        }
        AtomicFile.WriteAllText(MetricsPath, string.Concat(kept.Select(l => l.ToJsonString() + "\n")));
        return kept;
    }

    public void Dispose() => _lock.Dispose();
}
