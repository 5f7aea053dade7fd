using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace R1Sharp.Training.Training;

/// A run config's JSON into its record, strictly: a key the record does not have is an error (a
/// misspelt option silently ignored would run something other than what was asked).
public static class ConfigDeserializer
{
    private static readonly JsonSerializerOptions Strict = new() { UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow };

    public static T Deserialize<T>(JsonObject json, string path, string missingMessage) where T : class
    {
        try
        {
            return json.Deserialize<T>(Strict) ?? throw new R1SharpException($"{path}: empty");
        }
        catch (JsonException e)
        {
            if (Regex.Match(e.Message, "property '(?<key>[^']*)' could not be mapped") is { Success: true } unknown)
                throw new R1SharpException($"{path}: unknown key '{unknown.Groups["key"].Value}'{Where(e.Path)}");
            throw new R1SharpException($"{path}: {(e.Message.Contains("missing required") ? missingMessage : $"invalid value at {e.Path}")}");
        }
    }

    /// "$.lora.rank" -> " (in lora)"; nothing at the top level.
    private static string Where(string? path)
    {
        var inner = path is { Length: > 2 } && path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : "";
        var dot = inner.LastIndexOf('.');
        return dot > 0 ? $" (in {inner[..dot]})" : "";
    }
}
