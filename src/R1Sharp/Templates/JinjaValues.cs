using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace R1Sharp.Templates;

/// A name the template used but nobody defined: renders as "", is falsy, iterates as empty (Jinja's Undefined).
public sealed record Undefined(string Name)
{
    public override string ToString() => "";
}

/// `namespace(...)`: the one mutable object Jinja templates may assign attributes to.
public sealed class Namespace(Dictionary<string, object?> values)
{
    public Dictionary<string, object?> Values { get; } = values;
}

/// Something a template can call: builtins, bound string/dict methods, macros.
public delegate object? JinjaCallable(List<object?> args, Dictionary<string, object?> kwargs);

/// Template values follow Python's: None, bool, long, double, string, List, Dictionary (insertion-ordered).
public static class JinjaValues
{
    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        OrderedDictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    /// Python's str(): what `{{ value }}` prints. Containers may share items, so their text is built
    /// within `maxLength` characters rather than measured afterwards.
    public static string Str(object? v, int maxLength = RenderBudget.MaxStringLength) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v, maxLength),
    };

    /// Python's repr(), used for containers and non-string scalars.
    public static string Repr(object? v, int maxLength = RenderBudget.MaxStringLength)
    {
        var sb = new StringBuilder();
        WriteRepr(sb, v, maxLength, 0);
        return sb.ToString();
    }

    private static void WriteRepr(StringBuilder sb, object? v, int maxLength, int depth)
    {
        if (depth > RenderBudget.MaxValueDepth) throw new JinjaException($"a value nests deeper than {RenderBudget.MaxValueDepth} levels");
        switch (v)
        {
            case List<object?> l:
                sb.Append('[');
                for (int i = 0; i < l.Count; i++)
                {
                    if (i > 0) sb.Append(", ");
                    WriteRepr(sb, l[i], maxLength, depth + 1);
                    Bound(sb, maxLength);
                }
                sb.Append(']');
                break;
            case OrderedDictionary<string, object?> d:
                sb.Append('{');
                var first = true;
                foreach (var (key, value) in d)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    sb.Append(StringRepr(key)).Append(": ");
                    WriteRepr(sb, value, maxLength, depth + 1);
                    Bound(sb, maxLength);
                }
                sb.Append('}');
                break;
            default:
                sb.Append(v switch
                {
                    null => "None",
                    Undefined => "",
                    bool b => b ? "True" : "False",
                    long l => l.ToString(CultureInfo.InvariantCulture),
                    double d => FloatRepr(d),
                    string s => StringRepr(s),
                    Namespace => "<Namespace>",
                    _ => v.ToString() ?? "",
                });
                break;
        }
        Bound(sb, maxLength);
    }

    private static void Bound(StringBuilder sb, int maxLength)
    {
        if (sb.Length > maxLength) throw new JinjaException($"a value's text is longer than {maxLength:N0} characters");
    }

    /// Python's float repr: shortest round-trip digits, scientific below 1e-4 and from 1e16.
    private static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        var r = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        string digits;
        int point;
        if (r.IndexOf('E') is var e and >= 0)
        {
            digits = r[..e].Replace(".", "");
            point = 1 + int.Parse(r[(e + 1)..], CultureInfo.InvariantCulture);
        }
        else
        {
            var dot = r.IndexOf('.');
            digits = r.Replace(".", "");
            point = dot < 0 ? r.Length : dot;
        }
        var leading = digits.Length - digits.TrimStart('0').Length;
        digits = digits.Trim('0');
        point -= leading;
        var exponent = point - 1;
        string body;
        if (exponent is >= -4 and < 16)
            body = point <= 0 ? "0." + new string('0', -point) + digits
                : point >= digits.Length ? digits + new string('0', point - digits.Length) + ".0"
                : digits[..point] + "." + digits[point..];
        else
            body = digits[..1] + (digits.Length > 1 ? "." + digits[1..] : "") + "e" + (exponent < 0 ? "-" : "+") + Math.Abs(exponent).ToString("00", CultureInfo.InvariantCulture);
        return (d < 0 ? "-" : "") + body;
    }

    private static string StringRepr(string s)
    {
        var quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder().Append(quote);
        foreach (var c in s)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == quote) sb.Append('\\').Append(c);
                    else if (c < 0x20 || c == 0x7f) sb.Append($"\\x{(int)c:x2}");
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append(quote).ToString();
    }

    public static new bool Equals(object? a, object? b) => Equals(a, b, 0);

    private static bool Equals(object? a, object? b, int depth) =>
        depth > RenderBudget.MaxValueDepth ? throw new JinjaException($"a value nests deeper than {RenderBudget.MaxValueDepth} levels")
        : (a, b) switch
        {
            (null, null) => true,
            (Undefined, Undefined) => true,
            (bool x, bool y) => x == y,
            (long x, long y) => x == y,
            (long or double or bool, long or double or bool) => ToDouble(a) == ToDouble(b),
            (string x, string y) => x == y,
            (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Equals(p.First, p.Second, depth + 1)),
            (OrderedDictionary<string, object?> x, OrderedDictionary<string, object?> y) =>
                x.Count == y.Count && x.All(p => y.TryGetValue(p.Key, out var o) && Equals(p.Value, o, depth + 1)),
            _ => ReferenceEquals(a, b),
        };

    public static double ToDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new JinjaException($"expected a number, got {TypeName(v)}"),
    };

    /// An integer argument (an index, a count, a width): floats are truncated as Python's int() does.
    public static long ToInt(object? v) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        double d when double.IsFinite(d) && Math.Abs(d) < 9.2e18 => (long)d,
        double d => throw new JinjaException($"cannot convert float {FloatRepr(d)} to an integer"),
        _ => throw new JinjaException($"expected an integer, got {TypeName(v)}"),
    };

    public static int Compare(object? a, object? b) => (a, b) switch
    {
        (string x, string y) => string.CompareOrdinal(x, y),
        (long x, long y) => x.CompareTo(y),
        (long or double or bool, long or double or bool) => ToDouble(a).CompareTo(ToDouble(b)),
        _ => throw new JinjaException($"cannot compare {TypeName(a)} with {TypeName(b)}"),
    };

    public static string TypeName(object? v) => v switch
    {
        null => "None",
        Undefined u => $"undefined value '{u.Name}'",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        OrderedDictionary<string, object?> => "dict",
        Namespace => "namespace",
        JinjaCallable => "function",
        _ => v.GetType().Name,
    };

    /// JSON (objects, arrays, scalars) to template values.
    public static object? FromJson(JsonNode? node) => node switch
    {
        null => null,
        JsonObject o => new OrderedDictionary<string, object?>(o.Select(p => KeyValuePair.Create(p.Key, FromJson(p.Value)))),
        JsonArray a => a.Select(FromJson).ToList(),
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonValue v when v.TryGetValue<long>(out var l) => l,
        JsonValue v when v.TryGetValue<double>(out var d) => d,
        _ => node.ToJsonString(),
    };

    /// Python's json.dumps(value, ensure_ascii=False, indent=indent): the `tojson` filter of
    /// Hugging Face's chat templates. A negative indent means newlines without spaces, as in Python.
    public static string ToJson(object? value, int? indent = null, bool sortKeys = false, int maxLength = RenderBudget.MaxStringLength)
    {
        var sb = new StringBuilder();
        WriteJson(sb, value, indent is int i ? Math.Max(0, i) : null, 0, sortKeys, maxLength);
        return sb.ToString();
    }

    private static void WriteJson(StringBuilder sb, object? v, int? indent, int depth, bool sortKeys, int maxLength)
    {
        if (depth > RenderBudget.MaxValueDepth) throw new JinjaException($"a value nests deeper than {RenderBudget.MaxValueDepth} levels (circular reference?)");
        Bound(sb, maxLength);
        string Newline(int d)
        {
            if (indent is not int n) return "";
            if ((long)n * d + sb.Length > maxLength) throw new JinjaException($"tojson output is longer than {maxLength:N0} characters");
            return "\n" + new string(' ', n * d);
        }
        var itemSeparator = indent is null ? ", " : ",";
        switch (v)
        {
            case null or Undefined: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : FloatRepr(d)); break;
            case string s: JsonString(sb, s); break;
            case List<object?> list:
                if (list.Count == 0) { sb.Append("[]"); break; }
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(itemSeparator);
                    sb.Append(Newline(depth + 1));
                    WriteJson(sb, list[i], indent, depth + 1, sortKeys, maxLength);
                }
                sb.Append(Newline(depth)).Append(']');
                break;
            case OrderedDictionary<string, object?> dict:
                if (dict.Count == 0) { sb.Append("{}"); break; }
                sb.Append('{');
                var entries = sortKeys ? dict.OrderBy(p => p.Key, StringComparer.Ordinal).ToList() : dict.ToList();
                for (int i = 0; i < entries.Count; i++)
                {
                    if (i > 0) sb.Append(itemSeparator);
                    sb.Append(Newline(depth + 1));
                    JsonString(sb, entries[i].Key);
                    sb.Append(": ");
                    WriteJson(sb, entries[i].Value, indent, depth + 1, sortKeys, maxLength);
                }
                sb.Append(Newline(depth)).Append('}');
                break;
            case Namespace ns: WriteJson(sb, new OrderedDictionary<string, object?>(ns.Values), indent, depth + 1, sortKeys, maxLength); break;
            default: throw new JinjaException($"Object of type {TypeName(v)} is not JSON serializable");
        }
    }

    private static void JsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append($"\\u{(int)c:x4}");
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}

/// A template error: unsupported construct, runtime type error, or raise_exception().
public sealed class JinjaException(string message) : Exception(message);
