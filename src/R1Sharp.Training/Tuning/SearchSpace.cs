using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Training.Tuning;

public enum ParameterKind { Float, Int, Categorical }

/// One searched config key. Samplers work in an internal space: the value (or its log) for numbers,
/// the choice's index for categoricals; integers are widened by half a step each side so every grid
/// point owns an equal interval.
public sealed record Parameter(string Name, ParameterKind Kind, double Low, double High, bool Log, double Step,
    IReadOnlyList<JsonNode?> Choices, Condition? When)
{
    public bool IsNumeric => Kind != ParameterKind.Categorical;
    public double InternalLow => Kind == ParameterKind.Int ? Transform(Low - 0.5 * Step) : Transform(Low);
    public double InternalHigh => Kind == ParameterKind.Int ? Transform(High + 0.5 * Step) : Transform(High);

    private double Transform(double x) => Log ? Math.Log(x) : x;

    public double ToInternal(JsonNode? value)
    {
        if (Kind == ParameterKind.Categorical) return IndexOf(value);
        return Transform(TryNumber(value, out var x) ? x : double.NaN);
    }

    public JsonNode? FromInternal(double x)
    {
        switch (Kind)
        {
            case ParameterKind.Categorical:
                return Choices[Math.Clamp((int)x, 0, Choices.Count - 1)]?.DeepClone();
            case ParameterKind.Int:
                var v = Log ? Math.Exp(x) : x;
                var k = Math.Round((v - Low) / Step);
                return JsonValue.Create((long)Math.Clamp(Low + k * Step, Low, High));
            default:
                return JsonValue.Create(Math.Clamp(Log ? Math.Exp(x) : x, Low, High));
        }
    }

    public int IndexOf(JsonNode? value)
    {
        for (int i = 0; i < Choices.Count; i++)
            if (JsonNode.DeepEquals(Choices[i], value)) return i;
        return -1;
    }

    /// Whether a stored value is one this parameter could have produced.
    public bool Contains(JsonNode? value)
    {
        if (Kind == ParameterKind.Categorical) return IndexOf(value) >= 0;
        if (!TryNumber(value, out var x) || !double.IsFinite(x) || x < Low || x > High) return false;
        return Kind == ParameterKind.Float || (x - Low) % Step == 0;
    }

    /// A JSON number, whether parsed from text or created in code.
    public static bool TryNumber(JsonNode? node, out double x)
    {
        x = 0;
        if (node is not JsonValue v || v.GetValueKind() != JsonValueKind.Number) return false;
        if (v.TryGetValue(out x)) return true;
        if (v.TryGetValue<long>(out var l)) { x = l; return true; }
        if (v.TryGetValue<int>(out var i)) { x = i; return true; }
        return false;
    }
}

/// `"when": {"optimizer": ["adamw", "lion"]}`: the parameter exists only when an earlier one took one of these values.
public sealed record Condition(string Parent, IReadOnlyList<JsonNode?> Values)
{
    public bool HoldsFor(IReadOnlyDictionary<string, JsonNode?> sampled) =>
        sampled.TryGetValue(Parent, out var v) && Values.Any(c => JsonNode.DeepEquals(c, v));

    public string Key => Parent + "=" + string.Join("|", Values.Select(v => v?.ToJsonString() ?? "null"));
}

/// `space.json`: config keys (dotted, as `--set`) mapped to ranges, in the order they are sampled:
/// `{"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": true},
///   "batch_size": {"type": "categorical", "choices": [8, 16, 32]},
///   "model.n_routed_experts": {"type": "int", "low": 4, "high": 16, "step": 4}}`.
public sealed class SearchSpace
{
    public const int MaxParameters = 64, MaxChoices = 1000;

    public SearchSpace(IReadOnlyList<Parameter> parameters) => Parameters = parameters;

    public IReadOnlyList<Parameter> Parameters { get; }

    /// Parameters grouped by their condition, in sampling order; the unconditional group first.
    public IReadOnlyList<IReadOnlyList<Parameter>> Groups =>
        Parameters.GroupBy(p => p.When?.Key ?? "").Select(g => (IReadOnlyList<Parameter>)g.ToList()).ToList();

    public static SearchSpace Load(string path)
    {
        if (!File.Exists(path)) throw new R1SharpException($"search space not found: {path}");
        var info = new FileInfo(path);
        if (info.Length > 1 << 20) throw new R1SharpException($"{path}: {info.Length} bytes is too large for a search space");
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new R1SharpException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})"); }
        return Parse(root, path);
    }

    public static SearchSpace Parse(JsonNode? root, string source)
    {
        if (root is not JsonObject obj || obj.Count == 0) throw new R1SharpException($"{source}: expected an object of config keys, e.g. {{\"lr\": {{\"type\": \"float\", \"low\": 1e-4, \"high\": 1e-2, \"log\": true}}}}");
        if (obj.Count > MaxParameters) throw new R1SharpException($"{source}: {obj.Count} parameters (at most {MaxParameters})");
        var parameters = new List<Parameter>();
        foreach (var (name, node) in obj)
            parameters.Add(ParseParameter(name, node, parameters, $"{source}: {name}"));
        return new SearchSpace(parameters);
    }

    private static Parameter ParseParameter(string name, JsonNode? node, List<Parameter> earlier, string where)
    {
        if (name.Length == 0 || name.Split('.').Any(part => part.Length == 0 || !part.All(c => char.IsAsciiLetterOrDigit(c) || c == '_')))
            throw new R1SharpException($"{where}: a key is dotted names of letters, digits and '_' (as --set takes them)");
        if (node is not JsonObject p) throw new R1SharpException($"{where}: expected an object with \"type\"");
        foreach (var key in p.Select(kv => kv.Key))
            if (key is not ("type" or "low" or "high" or "log" or "step" or "choices" or "when"))
                throw new R1SharpException($"{where}: unknown field '{key}' (type, low, high, log, step, choices, when)");
        var type = Text(p["type"], where, "type");
        var when = ParseCondition(p["when"], earlier, where);
        switch (type)
        {
            case "categorical":
                if (p["choices"] is not JsonArray choices || choices.Count == 0) throw new R1SharpException($"{where}: categorical needs a non-empty \"choices\" array");
                if (choices.Count > MaxChoices) throw new R1SharpException($"{where}: {choices.Count} choices (at most {MaxChoices})");
                var list = new List<JsonNode?>();
                foreach (var c in choices)
                {
                    if (c is JsonObject or JsonArray) throw new R1SharpException($"{where}: choices must be numbers, strings, booleans or null");
                    if (list.Any(x => JsonNode.DeepEquals(x, c))) throw new R1SharpException($"{where}: choice {c?.ToJsonString() ?? "null"} appears twice");
                    list.Add(c?.DeepClone());
                }
                if (p["low"] is not null || p["high"] is not null || p["log"] is not null || p["step"] is not null)
                    throw new R1SharpException($"{where}: categorical takes only \"choices\" (and \"when\")");
                return new Parameter(name, ParameterKind.Categorical, 0, list.Count - 1, false, 1, list, when);
            case "float" or "int":
                if (p["choices"] is not null) throw new R1SharpException($"{where}: \"choices\" belongs to categorical parameters");
                var low = Number(p["low"], where, "low");
                var high = Number(p["high"], where, "high");
                var log = p["log"] is null ? false : p["log"] is JsonValue lv && lv.TryGetValue<bool>(out var b) ? b : throw new R1SharpException($"{where}: \"log\" must be true or false");
                if (!(low < high)) throw new R1SharpException($"{where}: low ({low}) must be below high ({high})");
                if (log && low <= 0) throw new R1SharpException($"{where}: a log range needs low > 0");
                if (type == "float")
                {
                    if (p["step"] is not null) throw new R1SharpException($"{where}: \"step\" is for int parameters");
                    return new Parameter(name, ParameterKind.Float, low, high, log, 0, [], when);
                }
                var step = p["step"] is null ? 1 : Number(p["step"], where, "step");
                if (low != Math.Floor(low) || high != Math.Floor(high) || step != Math.Floor(step) || step < 1 || Math.Abs(low) > 1e15 || Math.Abs(high) > 1e15)
                    throw new R1SharpException($"{where}: int low, high and step must be integers (step >= 1)");
                if ((high - low) % step != 0) throw new R1SharpException($"{where}: high - low ({high - low}) must be a multiple of step ({step})");
                if (log && step != 1) throw new R1SharpException($"{where}: a log int range needs step 1");
                return new Parameter(name, ParameterKind.Int, low, high, log, step, [], when);
            default:
                throw new R1SharpException($"{where}: type '{type}' is not one of float, int, categorical");
        }
    }

    private static Condition? ParseCondition(JsonNode? node, List<Parameter> earlier, string where)
    {
        if (node is null) return null;
        if (node is not JsonObject o || o.Count != 1 || o.First().Value is not JsonArray values || values.Count == 0)
            throw new R1SharpException($"{where}: \"when\" is {{\"EARLIER_KEY\": [values…]}}");
        var parentName = o.First().Key;
        var parent = earlier.FirstOrDefault(p => p.Name == parentName)
            ?? throw new R1SharpException($"{where}: \"when\" names '{parentName}', which is not a parameter defined before it");
        foreach (var v in values)
            if (!parent.Contains(v)) throw new R1SharpException($"{where}: \"when\" value {v?.ToJsonString() ?? "null"} is not a value of '{parentName}'");
        return new Condition(parentName, values.Select(v => v?.DeepClone()).ToList());
    }

    private static string Text(JsonNode? node, string where, string field) =>
        node is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new R1SharpException($"{where}: \"{field}\" must be a string");

    private static double Number(JsonNode? node, string where, string field) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var x) && double.IsFinite(x)
            ? x : throw new R1SharpException($"{where}: \"{field}\" must be a finite number");

    /// The parameters active for a set of values sampled so far, in order (conditions evaluated on the way).
    public bool IsActive(Parameter p, IReadOnlyDictionary<string, JsonNode?> sampled) => p.When is null || p.When.HoldsFor(sampled);

    /// Checks stored trial parameters against this space (a study resumed with another space fails here).
    public bool Admits(IReadOnlyDictionary<string, JsonNode?> values)
    {
        var seen = new Dictionary<string, JsonNode?>();
        foreach (var p in Parameters)
        {
            var active = IsActive(p, seen);
            if (values.TryGetValue(p.Name, out var v) != active) return false;
            if (active)
            {
                if (!p.Contains(v)) return false;
                seen[p.Name] = v;
            }
        }
        return values.Count == seen.Count;
    }
}
