using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Training.Rl;

/// A reward computed by the user's own program: `reward_command` runs (through /bin/sh) once per
/// batch of completions, reads one JSON line per completion on stdin — `{"prompt", "completion",
/// "answer"}` — and writes one line per completion on stdout: a number, or null to abstain. A command
/// that fails, hangs past `timeout`, or prints something else makes the affected completions abstain
/// (counted in `Abstained`, the reason in `LastProblem`), never stops the run.
public sealed class ExternalReward(string command, TimeSpan timeout, string workingDirectory) : IRewardFunction
{
    private const int MaxOutputBytes = 16 << 20;

    public string Name => "external";
    public int Abstained { get; private set; }
    public string? LastProblem { get; private set; }

    public double? Score(TaskProblem problem, string completion, int completionTokens, bool truncated) =>
        ScoreAll([(problem, completion)])[0];

    public double?[] ScoreAll(IReadOnlyList<(TaskProblem Problem, string Completion)> items)
    {
        var scores = new double?[items.Count];
        var output = Run(items, out var problem);
        var lines = output?.Split('\n', StringSplitOptions.TrimEntries).Where(l => l.Length > 0).ToArray() ?? [];
        if (output is not null && lines.Length != items.Count)
            problem ??= $"printed {lines.Length} lines for {items.Count} completions";
        for (int i = 0; i < items.Count && i < lines.Length; i++)
        {
            if (output is null) break;
            try
            {
                var node = JsonNode.Parse(lines[i]);
                if (node is null) continue;   // null: abstains
                if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && double.IsFinite(v.GetValue<double>())) scores[i] = v.GetValue<double>();
                else problem ??= $"line {i + 1} is not a number or null: {Shorten(lines[i])}";
            }
            catch (JsonException)
            {
                problem ??= $"line {i + 1} is not JSON: {Shorten(lines[i])}";
            }
        }
        Abstained += scores.Count(s => s is null);
        if (problem is not null) LastProblem = $"reward_command '{command}': {problem}";
        return scores;
    }

    private static string Shorten(string s) => s.Length > 80 ? s[..80] + "…" : s;

    /// The command's stdout, or null when it failed (the reason in `problem`).
    private string? Run(IReadOnlyList<(TaskProblem Problem, string Completion)> items, out string? problem)
    {
        problem = null;
        var start = new ProcessStartInfo("/bin/sh") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workingDirectory };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        using var process = new Process { StartInfo = start };
        try { process.Start(); }
        catch (System.ComponentModel.Win32Exception e) { problem = "cannot start: " + e.Message; return null; }
        var stdout = new BoundedReader(process.StandardOutput.BaseStream);
        var stderr = new BoundedReader(process.StandardError.BaseStream);
        var input = Task.Run(() =>
        {
            try
            {
                foreach (var (p, completion) in items)
                    process.StandardInput.WriteLine(new JsonObject { ["prompt"] = p.Prompt, ["completion"] = completion, ["answer"] = p.Answer }.ToJsonString());
                process.StandardInput.Close();
            }
            catch (IOException) { }   // the command stopped reading: its output says what it thought
        });
        if (!process.WaitForExit(timeout))
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit();
            problem = $"no answer within {timeout.TotalSeconds:0.#} s (killed)";
            return null;
        }
        input.Wait();
        // A background child the command left behind may hold its output open: what it printed by its exit counts.
        var finished = stdout.Done.Wait(TimeSpan.FromSeconds(5));
        if (stdout.Overflowed) { problem = $"printed more than {MaxOutputBytes >> 20} MB"; return null; }
        if (!finished) problem = "left a background process holding its output open (its output up to its exit is used)";
        if (process.ExitCode != 0)
        {
            var last = (stderr.Done.Wait(TimeSpan.FromSeconds(1)) ? stderr.Text() : null)?.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
            problem = $"exit code {process.ExitCode}{(last is null ? "" : ": " + Shorten(last))}";
            return null;
        }
        return stdout.Text();
    }

    /// A stream read to its end in the background, keeping at most `MaxOutputBytes` (the rest is drained unread).
    private sealed class BoundedReader
    {
        private readonly MemoryStream _buffer = new();

        public BoundedReader(Stream stream) => Done = Task.Run(() =>
        {
            var chunk = new byte[65536];
            int n;
            while ((n = stream.Read(chunk)) > 0)
                lock (_buffer)
                {
                    if (_buffer.Length + n > MaxOutputBytes) Overflowed = true;
                    if (!Overflowed) _buffer.Write(chunk, 0, n);
                }
        });

        public Task Done { get; }
        public bool Overflowed { get; private set; }

        /// What has been read so far, as UTF-8 text.
        public string Text() { lock (_buffer) return Encoding.UTF8.GetString(_buffer.GetBuffer(), 0, (int)_buffer.Length); }
    }
}
