using System.CommandLine;
using System.Text.Json;
using R1Sharp;

namespace R1Sharp.Cli;

/// Parses, runs, and turns every user error into one line on stderr and exit code 2.
public static class CommandRunner
{
    public const int UserError = 2;

    public static int Run(RootCommand root, string[] args)
    {
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            Console.Error.WriteLine("error: " + parsed.Errors[0].Message);
            return UserError;
        }
        return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    /// Runs a command body; known failures become a message and exit code 2, never a stack trace.
    public static int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is R1SharpException or IOException or UnauthorizedAccessException or JsonException)
        {
            Console.Error.WriteLine("error: " + e.Message.ReplaceLineEndings(" "));
            return UserError;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("internal error: " + e.Message.ReplaceLineEndings(" "));
            return 1;
        }
    }

    /// "3,14,15" -> ids; anything else is a user error.
    public static long[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new R1SharpException("--ids needs at least one token id, e.g. --ids 3,14,15");
        return parts.Select(p => long.TryParse(p, out var id) ? id : throw new R1SharpException($"--ids: '{p}' is not an integer token id")).ToArray();
    }

    public static readonly JsonSerializerOptions Json = new() { WriteIndented = false };
}
