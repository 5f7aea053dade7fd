using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Training.Training;

/// `manifest.json`: sha256 of a run's inputs and outputs, its seed and the git revision, so every
/// result can be traced to what produced it.
public static class Manifest
{
    public static void Write(string runDir, IEnumerable<string> inputs, int seed)
    {
        var outputs = Directory.GetFiles(runDir, "*", SearchOption.AllDirectories)
            .Where(f => !f.Contains(".tmp") && Path.GetFileName(f) is not ("manifest.json" or RunFolder.LockFile) && !f.Contains($"{Path.DirectorySeparatorChar}data{Path.DirectorySeparatorChar}"))
            .Order(StringComparer.Ordinal);
        var manifest = new JsonObject
        {
            ["created"] = DateTime.UtcNow.ToString("O"),
            ["seed"] = seed,
            ["git_revision"] = GitRevision(),
            ["r1sharp_version"] = typeof(Manifest).Assembly.GetName().Version?.ToString(),
            ["inputs"] = Hashes(inputs.Where(File.Exists), null),
            ["outputs"] = Hashes(outputs, runDir),
        };
        AtomicFile.WriteAllText(Path.Combine(runDir, "manifest.json"), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    private static JsonObject Hashes(IEnumerable<string> files, string? relativeTo)
    {
        var result = new JsonObject();
        foreach (var file in files)
        {
            using var stream = File.OpenRead(file);
            var key = relativeTo is null ? Path.GetFullPath(file) : Path.GetRelativePath(relativeTo, file);
            result[key] = Convert.ToHexStringLower(SHA256.HashData(stream));
        }
        return result;
    }

    private static string? GitRevision()
    {
        try
        {
            var start = new ProcessStartInfo("git", "rev-parse HEAD") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Environment.CurrentDirectory };
            using var process = Process.Start(start);
            if (process is null) return null;
            var output = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit(5000);
            return process.ExitCode == 0 && output.Length == 40 ? output : null;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return null;
        }
    }
}
