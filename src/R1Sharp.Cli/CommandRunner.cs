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
            Console.Error.WriteLine("error: " + OneLine(parsed.Errors[0].Message));
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
        catch (Exception e) when (e is R1SharpException or IOException or UnauthorizedAccessException or JsonException or System.Data.Common.DbException)
        {
            Console.Error.WriteLine("error: " + OneLine(e.Message));
            return UserError;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("internal error: " + OneLine(e.Message));
            if (Environment.GetEnvironmentVariable("R1SHARP_DEBUG") == "1") Console.Error.WriteLine(e);
            return 1;
        }
    }

    private static string OneLine(string message) =>
        System.Text.RegularExpressions.Regex.Replace(message, @"\s+", " ").Trim();

    /// "3,14,15" -> ids; anything else is a user error.
    public static long[] ParseIds(string text, string option = "--ids")
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new R1SharpException($"{option} needs at least one token id, e.g. {option} 3,14,15");
        return parts.Select(p => long.TryParse(p, out var id) ? id : throw new R1SharpException($"{option}: '{p}' is not an integer token id")).ToArray();
    }

    public static Option<string?> AdapterOption() =>
        new("--adapter") { Description = "a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) merged into the weights on load" };

    /// `--weights f32|bf16|fp8|int8|int4`: how the loaded model holds its weights in memory.
    public static Option<string> WeightsOption()
    {
        var option = new Option<string>("--weights")
        {
            Description = "weights in memory: f32 (default; 8- and 4-bit checkpoints are dequantized on load), bf16, fp8, int8 or int4",
            DefaultValueFactory = _ => "f32",
        };
        option.AcceptOnlyFromAmong("f32", "bf16", "fp8", "int8", "int4");
        return option;
    }

    public static R1Sharp.Models.WeightFormat ParseWeights(string name) => Enum.Parse<R1Sharp.Models.WeightFormat>(name, ignoreCase: true);

    public static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    /// JSON for people and programs alike: non-ASCII text written as is (still valid JSON).
    public static readonly JsonSerializerOptions ReadableJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
