using System.Globalization;
using System.Text;
using static R1Sharp.Templates.JinjaValues;

namespace R1Sharp.Templates;

/// Attribute and item access, operators, filters, tests and the str/dict methods templates call.
public static class JinjaFunctions
{
    public static object? Attribute(object? target, string name) => target switch
    {
        Undefined u => throw new JinjaException($"'{u.Name}' is undefined (reading .{name})"),
        OrderedDictionary<string, object?> d => d.TryGetValue(name, out var v) ? v : (object?)DictMethod(d, name) ?? new Undefined(name),
        Namespace ns => ns.Values.TryGetValue(name, out var v) ? v : new Undefined(name),
        string s => (object?)StringMethod(s, name) ?? new Undefined(name),
        List<object?> l when long.TryParse(name, out var i) => Item(l, i),
        _ => new Undefined(name),
    };

    public static object? Item(object? target, object? key) => target switch
    {
        Undefined u => throw new JinjaException($"'{u.Name}' is undefined (reading [{Repr(key)}])"),
        OrderedDictionary<string, object?> d when key is string k => d.TryGetValue(k, out var v) ? v : (object?)DictMethod(d, k) ?? new Undefined(k),
        List<object?> l when key is long or bool => Index(l.Count, key) is int i ? l[i] : new Undefined($"[{Repr(key)}]"),
        string s when key is long or bool => Index(CodePoints(s).Count, key) is int i ? CodePoints(s)[i] : new Undefined($"[{Repr(key)}]"),
        _ when key is string name => Attribute(target, name),
        _ => new Undefined($"[{Repr(key)}]"),
    };

    private static int? Index(int count, object? key)
    {
        var i = (long)ToDouble(key);
        if (i < 0) i += count;
        return i >= 0 && i < count ? (int)i : null;
    }

    private static List<string> CodePoints(string s)
    {
        var list = new List<string>(s.Length);
        for (int i = 0; i < s.Length; i += char.IsSurrogatePair(s, i) ? 2 : 1) list.Add(s.Substring(i, char.IsSurrogatePair(s, i) ? 2 : 1));
        return list;
    }

    /// Python slicing seq[start:stop:step] on lists and strings.
    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        var items = target switch
        {
            List<object?> l => l,
            string s => CodePoints(s).Cast<object?>().ToList(),
            _ => throw new JinjaException($"'{TypeName(target)}' object is not subscriptable"),
        };
        long n = items.Count, st = step is null ? 1 : (long)ToDouble(step);
        if (st == 0) throw new JinjaException("slice step cannot be zero");
        long Clamp(object? v, long forNull)
        {
            if (v is null) return forNull;
            var x = (long)ToDouble(v);
            if (x < 0) x += n;
            return st > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        long from = Clamp(start, st > 0 ? 0 : n - 1), to = Clamp(stop, st > 0 ? n : -1);
        var result = new List<object?>();
        for (var i = from; st > 0 ? i < to : i > to; i += st) result.Add(items[(int)i]);
        return target is string ? string.Concat(result.Cast<string>()) : result;
    }

    public static object? Binary(string op, object? a, object? b)
    {
        if (op == "~") return Str(a) + Str(b);
        if (op is "==") return JinjaValues.Equals(a, b);
        if (op is "!=") return !JinjaValues.Equals(a, b);
        if (op == "in") return Contains(b, a);
        if (a is Undefined ua) throw new JinjaException($"'{ua.Name}' is undefined");
        if (b is Undefined ub) throw new JinjaException($"'{ub.Name}' is undefined");
        switch (op)
        {
            case "<": return Compare(a, b) < 0;
            case ">": return Compare(a, b) > 0;
            case "<=": return Compare(a, b) <= 0;
            case ">=": return Compare(a, b) >= 0;
        }
        if (op == "+")
        {
            if (a is string s1 && b is string s2) return s1 + s2;
            if (a is List<object?> l1 && b is List<object?> l2) return l1.Concat(l2).ToList();
        }
        if (op == "*")
        {
            if (a is string s && b is long times) return string.Concat(Enumerable.Repeat(s, (int)Math.Max(0, times)));
            if (a is List<object?> l && b is long times2) return Enumerable.Repeat(l, (int)Math.Max(0, times2)).SelectMany(x => x).ToList();
        }
        if (a is not (long or double or bool) || b is not (long or double or bool))
            throw new JinjaException($"unsupported operand type(s) for {op}: '{TypeName(a)}' and '{TypeName(b)}'");
        var integers = a is long or bool && b is long or bool;
        double x = ToDouble(a), y = ToDouble(b);
        switch (op)
        {
            case "+": return integers ? (long)x + (long)y : (object)(x + y);
            case "-": return integers ? (long)x - (long)y : (object)(x - y);
            case "*": return integers ? (long)x * (long)y : (object)(x * y);
            case "/": if (y == 0) throw new JinjaException("division by zero"); return x / y;
            case "//":
                if (y == 0) throw new JinjaException("integer division or modulo by zero");
                return integers ? (long)Math.Floor(x / y) : (object)Math.Floor(x / y);
            case "%":
                if (y == 0) throw new JinjaException("integer division or modulo by zero");
                var m = x - y * Math.Floor(x / y);
                return integers ? (long)m : (object)m;
            case "**": return integers && y >= 0 ? (long)Math.Pow(x, y) : (object)Math.Pow(x, y);
        }
        throw new JinjaException($"unknown operator {op}");
    }

    private static bool Contains(object? container, object? item) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal) : throw new JinjaException($"'in <string>' requires string as left operand, not {TypeName(item)}"),
        List<object?> l => l.Any(x => JinjaValues.Equals(x, item)),
        OrderedDictionary<string, object?> d => item is string k && d.ContainsKey(k),
        Namespace ns => item is string k2 && ns.Values.ContainsKey(k2),
        Undefined u => throw new JinjaException($"'{u.Name}' is undefined"),
        _ => throw new JinjaException($"argument of type '{TypeName(container)}' is not iterable"),
    };

    public static bool Test(string name, object? v, List<object?> args) => name switch
    {
        "defined" => v is not Undefined,
        "undefined" => v is Undefined,
        "none" => v is null,
        "string" => v is string,
        "number" => v is long or double,
        "integer" => v is long,
        "float" => v is double,
        "boolean" => v is bool,
        "true" => v is true,
        "false" => v is false,
        "mapping" => v is OrderedDictionary<string, object?> or Namespace,
        "sequence" => v is List<object?> or string or OrderedDictionary<string, object?>,
        "iterable" => v is List<object?> or string or OrderedDictionary<string, object?>,
        "callable" => v is JinjaCallable,
        "even" => (long)ToDouble(v) % 2 == 0,
        "odd" => (long)ToDouble(v) % 2 != 0,
        "divisibleby" => (long)ToDouble(v) % (long)ToDouble(Arg(args, 0, name)) == 0,
        "equalto" or "eq" or "==" => JinjaValues.Equals(v, Arg(args, 0, name)),
        "ne" or "!=" => !JinjaValues.Equals(v, Arg(args, 0, name)),
        "lt" or "lessthan" => Compare(v, Arg(args, 0, name)) < 0,
        "gt" or "greaterthan" => Compare(v, Arg(args, 0, name)) > 0,
        "le" => Compare(v, Arg(args, 0, name)) <= 0,
        "ge" => Compare(v, Arg(args, 0, name)) >= 0,
        "in" => Contains(Arg(args, 0, name), v),
        "sameas" => ReferenceEquals(v, Arg(args, 0, name)) || v is null && Arg(args, 0, name) is null || v is bool b && Arg(args, 0, name) is bool c && b == c,
        "lower" => v is string s && s == s.ToLowerInvariant(),
        "upper" => v is string s2 && s2 == s2.ToUpperInvariant(),
        _ => throw new JinjaException($"the test '{name}' is not supported"),
    };

    private static object? Arg(List<object?> args, int i, string what) =>
        i < args.Count ? args[i] : throw new JinjaException($"'{what}' needs argument {i + 1}");

    public static object? Filter(string name, object? v, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? Get(int i, string key, object? fallback) => i < args.Count ? args[i] : kwargs.TryGetValue(key, out var k) ? k : fallback;
        switch (name)
        {
            case "length" or "count":
                return v switch
                {
                    string s => (long)CodePoints(s).Count,
                    List<object?> l => (long)l.Count,
                    OrderedDictionary<string, object?> d => (long)d.Count,
                    Undefined => 0L,
                    _ => throw new JinjaException($"object of type '{TypeName(v)}' has no len()"),
                };
            case "tojson":
                var indent = Get(0, "indent", null);
                return ToJson(v, indent is null ? null : (int)ToDouble(indent), Truthy(Get(1, "sort_keys", false)));
            case "trim": return Get(0, "chars", null) is string chars ? Str(v).Trim(chars.ToCharArray()) : PyStrip(Str(v), null, true, true);
            case "upper": return Str(v).ToUpperInvariant();
            case "lower": return Str(v).ToLowerInvariant();
            case "capitalize": return Capitalize(Str(v));
            case "title": return Title(Str(v));
            case "string": return Str(v);
            case "safe": return v;
            case "replace": return Str(v).Replace(Str(Arg(args, 0, name)), Str(Arg(args, 1, name)));
            case "join":
                var separator = Str(Get(0, "d", ""));
                var attribute = Get(1, "attribute", null);
                return string.Join(separator, JinjaInterpreter.Iterate(v).Select(x => Str(attribute is null ? x : Attribute(x, Str(attribute)))));
            case "first": return JinjaInterpreter.Iterate(v).DefaultIfEmpty(new Undefined("first")).First();
            case "last": return JinjaInterpreter.Iterate(v).DefaultIfEmpty(new Undefined("last")).Last();
            case "reverse": return v is string rs ? string.Concat(CodePoints(rs).AsEnumerable().Reverse()) : JinjaInterpreter.Iterate(v).Reverse().ToList();
            case "list": return JinjaInterpreter.Iterate(v).ToList();
            case "default" or "d":
                var useFalsy = Truthy(Get(1, "boolean", false));
                return v is Undefined || useFalsy && !Truthy(v) ? Get(0, "default_value", "") : v;
            case "int":
                return v switch
                {
                    long l => l, double d => (long)d, bool b => b ? 1L : 0L,
                    string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var p) => p,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var f) => (long)f,
                    _ => Get(0, "default", 0L),
                };
            case "float":
                return v switch
                {
                    long l => (double)l, double d => d, bool b => b ? 1.0 : 0.0,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var f) => f,
                    _ => Get(0, "default", 0.0),
                };
            case "abs": return v is long al ? Math.Abs(al) : (object)Math.Abs(ToDouble(v));
            case "round":
                var digits = (int)ToDouble(Get(0, "precision", 0L));
                return Math.Round(ToDouble(v), digits, MidpointRounding.ToEven);
            case "items":
                if (v is Undefined) return new List<object?>();
                if (v is not OrderedDictionary<string, object?> dict) throw new JinjaException($"items filter needs a mapping, got {TypeName(v)}");
                return dict.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList();
            case "selectattr" or "rejectattr":
                var key = Str(Arg(args, 0, name));
                var keep = name == "selectattr";
                return JinjaInterpreter.Iterate(v).Where(x =>
                {
                    var value = Attribute(x, key);
                    var passes = args.Count > 1 ? Test(Str(args[1]), value, args.Skip(2).ToList()) : Truthy(value);
                    return passes == keep;
                }).ToList();
            case "select" or "reject":
                var keepIt = name == "select";
                return JinjaInterpreter.Iterate(v).Where(x => (args.Count > 0 ? Test(Str(args[0]), x, args.Skip(1).ToList()) : Truthy(x)) == keepIt).ToList();
            case "map":
                if (kwargs.TryGetValue("attribute", out var attr)) return JinjaInterpreter.Iterate(v).Select(x => Attribute(x, Str(attr))).ToList();
                var filterName = Str(Arg(args, 0, name));
                return JinjaInterpreter.Iterate(v).Select(x => Filter(filterName, x, args.Skip(1).ToList(), [])).ToList();
            case "unique":
                var seen = new List<object?>();
                foreach (var x in JinjaInterpreter.Iterate(v)) if (!seen.Any(y => JinjaValues.Equals(x, y))) seen.Add(x);
                return seen;
            case "indent":
                var width = Get(0, "width", 4L);
                var pad = width is string ps ? ps : new string(' ', (int)ToDouble(width));
                var lines = Str(v).Split('\n');
                var indentFirst = Truthy(Get(1, "first", false));
                var blank = Truthy(Get(2, "blank", false));
                return string.Join("\n", lines.Select((l, i) => (i == 0 && !indentFirst) || (!blank && l.Trim().Length == 0 && i > 0) ? l : pad + l));
            case "wordcount": return (long)Str(v).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
            default: throw new JinjaException($"the filter '{name}' is not supported");
        }
    }

    private static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    private static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        var previousIsLetter = false;
        foreach (var c in s)
        {
            sb.Append(previousIsLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousIsLetter = char.IsLetter(c);
        }
        return sb.ToString();
    }

    /// Python's str.strip family: whitespace by default, else any of `chars`.
    private static string PyStrip(string s, string? chars, bool left, bool right)
    {
        int start = 0, end = s.Length;
        bool Strip(char c) => chars is null ? char.IsWhiteSpace(c) : chars.Contains(c);
        if (left) while (start < end && Strip(s[start])) start++;
        if (right) while (end > start && Strip(s[end - 1])) end--;
        return s[start..end];
    }

    private static JinjaCallable? StringMethod(string s, string name) => name switch
    {
        "strip" => (a, _) => PyStrip(s, a.Count > 0 && a[0] is string c ? c : null, true, true),
        "lstrip" => (a, _) => PyStrip(s, a.Count > 0 && a[0] is string c ? c : null, true, false),
        "rstrip" => (a, _) => PyStrip(s, a.Count > 0 && a[0] is string c ? c : null, false, true),
        "upper" => (_, _) => s.ToUpperInvariant(),
        "lower" => (_, _) => s.ToLowerInvariant(),
        "title" => (_, _) => Title(s),
        "capitalize" => (_, _) => Capitalize(s),
        "startswith" => (a, _) => Prefixes(a, "startswith").Any(p => s.StartsWith(p, StringComparison.Ordinal)),
        "endswith" => (a, _) => Prefixes(a, "endswith").Any(p => s.EndsWith(p, StringComparison.Ordinal)),
        "replace" => (a, _) => a.Count >= 2 ? s.Replace(Str(a[0]), Str(a[1])) : throw new JinjaException("replace() needs 2 arguments"),
        "find" => (a, _) => (long)s.IndexOf(Str(Arg(a, 0, "find")), StringComparison.Ordinal),
        "count" => (a, _) => { var sub = Str(Arg(a, 0, "count")); return sub.Length == 0 ? (long)s.Length + 1 : (long)((s.Length - s.Replace(sub, "").Length) / sub.Length); },
        "split" => (a, k) => Split(s, a.Count > 0 ? a[0] : k.GetValueOrDefault("sep"), a.Count > 1 ? a[1] : k.GetValueOrDefault("maxsplit")),
        "splitlines" => (_, _) => s.Split('\n').Select(l => (object?)l.TrimEnd('\r')).ToList(),
        "join" => (a, _) => string.Join(s, JinjaInterpreter.Iterate(Arg(a, 0, "join")).Select(Str)),
        "isdigit" => (_, _) => s.Length > 0 && s.All(char.IsDigit),
        "isalpha" => (_, _) => s.Length > 0 && s.All(char.IsLetter),
        "format" => (a, _) => Format(s, a),
        _ => null,
    };

    private static IEnumerable<string> Prefixes(List<object?> args, string method) => Arg(args, 0, method) switch
    {
        string p => [p],
        List<object?> l => l.Select(Str),
        var other => throw new JinjaException($"{method} arg must be str or a tuple of str, not {TypeName(other)}"),
    };

    private static List<object?> Split(string s, object? separator, object? maxSplit)
    {
        var max = maxSplit is null ? -1 : (int)ToDouble(maxSplit);
        if (separator is null)
        {
            var words = s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (max >= 0 && words.Length > max + 1)
            {
                var rest = s.TrimStart();
                var head = new List<object?>();
                for (int i = 0; i < max; i++)
                {
                    var cut = rest.IndexOfAny([' ', '\t', '\n', '\r', '\f', '\v']);
                    head.Add(rest[..cut]);
                    rest = rest[cut..].TrimStart();
                }
                head.Add(rest);
                return head;
            }
            return words.Cast<object?>().ToList();
        }
        var sep = Str(separator);
        if (sep.Length == 0) throw new JinjaException("empty separator");
        return (max >= 0 ? s.Split(sep, max + 1) : s.Split(sep)).Cast<object?>().ToList();
    }

    private static string Format(string format, List<object?> args)
    {
        var sb = new StringBuilder();
        int next = 0;
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] == '{' && i + 1 < format.Length && format[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (format[i] == '}' && i + 1 < format.Length && format[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (format[i] != '{') { sb.Append(format[i]); continue; }
            var close = format.IndexOf('}', i);
            var field = format[(i + 1)..close];
            sb.Append(Str(field.Length == 0 ? Arg(args, next++, "format") : Arg(args, int.Parse(field, CultureInfo.InvariantCulture), "format")));
            i = close;
        }
        return sb.ToString();
    }

    private static JinjaCallable? DictMethod(OrderedDictionary<string, object?> d, string name) => name switch
    {
        "items" => (_, _) => d.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
        "keys" => (_, _) => d.Keys.Cast<object?>().ToList(),
        "values" => (_, _) => d.Values.ToList(),
        "get" => (a, _) => d.TryGetValue(Str(Arg(a, 0, "get")), out var v) ? v : a.Count > 1 ? a[1] : null,
        _ => null,
    };

    /// The strftime subset templates use for dates ("%d %b %Y" and friends).
    public static string Strftime(DateTime t, string format)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { sb.Append(format[i]); continue; }
            var c = format[++i];
            sb.Append(c switch
            {
                'Y' => t.ToString("yyyy", CultureInfo.InvariantCulture),
                'y' => t.ToString("yy", CultureInfo.InvariantCulture),
                'm' => t.ToString("MM", CultureInfo.InvariantCulture),
                'd' => t.ToString("dd", CultureInfo.InvariantCulture),
                'b' => t.ToString("MMM", CultureInfo.InvariantCulture),
                'B' => t.ToString("MMMM", CultureInfo.InvariantCulture),
                'a' => t.ToString("ddd", CultureInfo.InvariantCulture),
                'A' => t.ToString("dddd", CultureInfo.InvariantCulture),
                'H' => t.ToString("HH", CultureInfo.InvariantCulture),
                'M' => t.ToString("mm", CultureInfo.InvariantCulture),
                'S' => t.ToString("ss", CultureInfo.InvariantCulture),
                'j' => t.DayOfYear.ToString("000", CultureInfo.InvariantCulture),
                '%' => "%",
                _ => "%" + c,
            });
        }
        return sb.ToString();
    }
}
