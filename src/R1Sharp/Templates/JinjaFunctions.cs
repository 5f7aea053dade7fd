using System.Globalization;
using System.Text;
using static R1Sharp.Templates.JinjaValues;

namespace R1Sharp.Templates;

/// Attribute and item access, operators, filters, tests and the str/dict methods templates call,
/// within one render's budget: results are sized before they are built, work is counted.
public sealed class JinjaFunctions(RenderBudget budget)
{
    public object? Attribute(object? target, string name) => target switch
    {
        Undefined u => throw new JinjaException($"'{u.Name}' is undefined (reading .{name})"),
        OrderedDictionary<string, object?> d => d.TryGetValue(name, out var v) ? v : (object?)DictMethod(d, name) ?? new Undefined(name),
        Namespace ns => ns.Values.TryGetValue(name, out var v) ? v : new Undefined(name),
        string s => (object?)StringMethod(s, name) ?? new Undefined(name),
        List<object?> l when long.TryParse(name, out var i) => Item(l, i),
        _ => new Undefined(name),
    };

    public object? Item(object? target, object? key) => target switch
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
        var i = ToInt(key);
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
    public object? Slice(object? target, object? start, object? stop, object? step)
    {
        if (target is string text) budget.Step(text.Length);
        var items = target switch
        {
            List<object?> l => l,
            string s => CodePoints(s).Cast<object?>().ToList(),
            _ => throw new JinjaException($"'{TypeName(target)}' object is not subscriptable"),
        };
        long n = items.Count, st = step is null ? 1 : ToInt(step);
        if (st == 0) throw new JinjaException("slice step cannot be zero");
        long Clamp(object? v, long forNull)
        {
            if (v is null) return forNull;
            var x = ToInt(v);
            if (x < 0) x += n;
            return st > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        long from = Clamp(start, st > 0 ? 0 : n - 1), to = Clamp(stop, st > 0 ? n : -1);
        budget.Step(items.Count);
        var result = new List<object?>();
        for (var i = from; st > 0 ? i < to : i > to; i += st) result.Add(items[(int)i]);
        return target is string ? string.Concat(result.Cast<string>()) : result;
    }

    public object? Binary(string op, object? a, object? b)
    {
        if (op == "~") return Concat(Str(a), Str(b));
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
            if (a is string s1 && b is string s2) return Concat(s1, s2);
            if (a is List<object?> l1 && b is List<object?> l2) { budget.CheckList((long)l1.Count + l2.Count, "+"); return l1.Concat(l2).ToList(); }
        }
        if (op == "*")
        {
            if ((a, b) is (string or List<object?>, long) or (long, string or List<object?>))
            {
                var (sequence, times) = a is long n ? (b, n) : (a, (long)b!);
                times = Math.Max(0, times);
                if (sequence is string s)
                {
                    budget.CheckString(s.Length * (double)times > long.MaxValue ? long.MaxValue : s.Length * times, "'*'");
                    return new StringBuilder(s.Length * (int)times).Insert(0, s, (int)times).ToString();
                }
                var l = (List<object?>)sequence!;
                budget.CheckList(l.Count * (double)times > long.MaxValue ? long.MaxValue : l.Count * times, "'*'");
                return Enumerable.Repeat(l, (int)times).SelectMany(x => x).ToList();
            }
        }
        if (a is not (long or double or bool) || b is not (long or double or bool))
            throw new JinjaException($"unsupported operand type(s) for {op}: '{TypeName(a)}' and '{TypeName(b)}'");
        if (a is long or bool && b is long or bool) return IntegerArithmetic(op, ToInt(a), ToInt(b));
        double x = ToDouble(a), y = ToDouble(b);
        switch (op)
        {
            case "+": return x + y;
            case "-": return x - y;
            case "*": return x * y;
            case "/": if (y == 0) throw new JinjaException("division by zero"); return x / y;
            case "//":
                if (y == 0) throw new JinjaException("float floor division by zero");
                return Math.Floor(x / y);
            case "%":
                if (y == 0) throw new JinjaException("float modulo by zero");
                return x - y * Math.Floor(x / y);
            case "**": return Math.Pow(x, y);
        }
        throw new JinjaException($"unknown operator {op}");
    }

    /// Python's integer operators on 64 bits: a result Python would need a big integer for is an error.
    private static object IntegerArithmetic(string op, long x, long y)
    {
        try
        {
            switch (op)
            {
                case "+": return checked(x + y);
                case "-": return checked(x - y);
                case "*": return checked(x * y);
                case "/": if (y == 0) throw new JinjaException("division by zero"); return (double)x / y;
                case "//":
                case "%":
                    if (y == 0) throw new JinjaException("integer division or modulo by zero");
                    var quotient = checked(x / y);
                    var remainder = x % y;
                    if (remainder != 0 && (remainder < 0) != (y < 0)) { quotient--; remainder += y; }   // floor, as Python
                    return op == "//" ? quotient : remainder;
                case "**":
                    if (y < 0) return Math.Pow(x, y);
                    if (x is 0 or 1) return y == 0 ? 1L : x;
                    if (x == -1) return y % 2 == 0 ? 1L : -1L;
                    if (y > 63) throw new OverflowException();
                    var power = System.Numerics.BigInteger.Pow(x, (int)y);
                    return power >= long.MinValue && power <= long.MaxValue ? (long)power : throw new OverflowException();
            }
        }
        catch (OverflowException)
        {
            throw new JinjaException($"integer overflow: {x} {op} {y} does not fit in 64 bits");
        }
        throw new JinjaException($"unknown operator {op}");
    }

    private string Concat(string a, string b)
    {
        budget.CheckString((long)a.Length + b.Length, "string concatenation");
        return a + b;
    }

    private bool Contains(object? container, object? item) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal) : throw new JinjaException($"'in <string>' requires string as left operand, not {TypeName(item)}"),
        List<object?> l => Counted(l.Count) && l.Any(x => JinjaValues.Equals(x, item)),
        OrderedDictionary<string, object?> d => item is string k && d.ContainsKey(k),
        Namespace ns => item is string k2 && ns.Values.ContainsKey(k2),
        Undefined u => throw new JinjaException($"'{u.Name}' is undefined"),
        _ => throw new JinjaException($"argument of type '{TypeName(container)}' is not iterable"),
    };

    private bool Counted(long items)
    {
        budget.Step(items);
        return true;
    }

    public bool Test(string name, object? v, List<object?> args) => name switch
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
        "even" => ToInt(v) % 2 == 0,
        "odd" => ToInt(v) % 2 != 0,
        "divisibleby" => Arg(args, 0, name) is var d && ToInt(d) == 0 ? throw new JinjaException("divisibleby 0: integer division or modulo by zero") : ToInt(v) % ToInt(d) == 0,
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

    public object? Filter(string name, object? v, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? Get(int i, string key, object? fallback) => i < args.Count ? args[i] : kwargs.TryGetValue(key, out var k) ? k : fallback;
        List<object?> Items(object? value) { var items = JinjaInterpreter.Iterate(value).ToList(); budget.Step(items.Count); return items; }
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
                var indent = Get(0, "indent", null) is { } given ? (int)Math.Clamp(ToInt(given), -1, RenderBudget.MaxStringLength) : (int?)null;
                var json = ToJson(v, indent, Truthy(Get(1, "sort_keys", false)));
                budget.CheckString(json.Length, "tojson");
                return json;
            case "trim": return Get(0, "chars", null) is string chars ? Str(v).Trim(chars.ToCharArray()) : PyStrip(Str(v), null, true, true);
            case "upper": return Str(v).ToUpperInvariant();
            case "lower": return Str(v).ToLowerInvariant();
            case "capitalize": return Capitalize(Str(v));
            case "title": return Title(Str(v));
            case "string": return Str(v);
            case "safe": return v;
            case "replace": return Replace(Str(v), Str(Arg(args, 0, name)), Str(Arg(args, 1, name)));
            case "join":
                var separator = Str(Get(0, "d", ""));
                var attribute = Get(1, "attribute", null);
                return Join(separator, Items(v).Select(x => Str(attribute is null ? x : Attribute(x, Str(attribute)))));
            case "first": return Items(v).DefaultIfEmpty(new Undefined("first")).First();
            case "last": return Items(v).DefaultIfEmpty(new Undefined("last")).Last();
            case "reverse": return v is string rs ? string.Concat(CodePoints(rs).AsEnumerable().Reverse()) : Items(v).AsEnumerable().Reverse().ToList();
            case "list": return Items(v);
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
                return Round(ToDouble(v), ToInt(Get(0, "precision", 0L)));
            case "items":
                if (v is Undefined) return new List<object?>();
                if (v is not OrderedDictionary<string, object?> dict) throw new JinjaException($"items filter needs a mapping, got {TypeName(v)}");
                return dict.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList();
            case "selectattr" or "rejectattr":
                var key = Str(Arg(args, 0, name));
                var keep = name == "selectattr";
                return Items(v).Where(x =>
                {
                    var value = Attribute(x, key);
                    var passes = args.Count > 1 ? Test(Str(args[1]), value, args.Skip(2).ToList()) : Truthy(value);
                    return passes == keep;
                }).ToList();
            case "select" or "reject":
                var keepIt = name == "select";
                return Items(v).Where(x => (args.Count > 0 ? Test(Str(args[0]), x, args.Skip(1).ToList()) : Truthy(x)) == keepIt).ToList();
            case "map":
                if (kwargs.TryGetValue("attribute", out var attr)) return Items(v).Select(x => Attribute(x, Str(attr))).ToList();
                var filterName = Str(Arg(args, 0, name));
                return Items(v).Select(x => Filter(filterName, x, args.Skip(1).ToList(), [])).ToList();
            case "unique":
                var seen = new List<object?>();
                foreach (var x in Items(v))
                {
                    budget.Step(seen.Count);
                    if (!seen.Any(y => JinjaValues.Equals(x, y))) seen.Add(x);
                }
                return seen;
            case "indent":
                var width = Get(0, "width", 4L);
                var pad = width is string ps ? ps : new string(' ', (int)Math.Clamp(ToInt(width), 0, RenderBudget.MaxStringLength));   // negative: none, as Python's ' ' * -5
                var lines = Str(v).Split('\n');
                budget.CheckString(Str(v).Length + (long)pad.Length * lines.Length, "indent");
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

    /// Python's round(x, n): half to even; n past float precision leaves x as it is, negative n rounds to tens.
    private static double Round(double x, long digits)
    {
        if (digits > 15 || !double.IsFinite(x)) return x;
        if (digits >= 0) return Math.Round(x, (int)digits, MidpointRounding.ToEven);
        if (digits < -308) return 0.0 * x;
        var scale = Math.Pow(10, -digits);
        return Math.Round(x / scale, MidpointRounding.ToEven) * scale;
    }

    private string Replace(string s, string old, string replacement)
    {
        if (old.Length == 0) budget.CheckString(s.Length + (long)replacement.Length * (s.Length + 1), "replace");
        else
        {
            long count = 0;
            for (int at = s.IndexOf(old, StringComparison.Ordinal); at >= 0; at = s.IndexOf(old, at + old.Length, StringComparison.Ordinal)) count++;
            budget.CheckString(s.Length + count * (replacement.Length - (long)old.Length), "replace");
        }
        return s.Replace(old, replacement, StringComparison.Ordinal);
    }

    private string Join(string separator, IEnumerable<string> parts)
    {
        var list = parts.ToList();
        budget.CheckString(list.Sum(p => (long)p.Length) + (long)separator.Length * Math.Max(0, list.Count - 1), "join");
        return string.Join(separator, list);
    }

    private JinjaCallable? StringMethod(string s, string name) => name switch
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
        "replace" => (a, _) => a.Count >= 2 ? Replace(s, Str(a[0]), Str(a[1])) : throw new JinjaException("replace() needs 2 arguments"),
        "find" => (a, _) => (long)s.IndexOf(Str(Arg(a, 0, "find")), StringComparison.Ordinal),
        "count" => (a, _) => { var sub = Str(Arg(a, 0, "count")); return sub.Length == 0 ? (long)s.Length + 1 : (long)((s.Length - s.Replace(sub, "").Length) / sub.Length); },
        "split" => (a, k) => Split(s, a.Count > 0 ? a[0] : k.GetValueOrDefault("sep"), a.Count > 1 ? a[1] : k.GetValueOrDefault("maxsplit")),
        "splitlines" => (_, _) => s.Split('\n').Select(l => (object?)l.TrimEnd('\r')).ToList(),
        "join" => (a, _) => Join(s, JinjaInterpreter.Iterate(Arg(a, 0, "join")).Select(x => Str(x))),
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

    private List<object?> Split(string s, object? separator, object? maxSplit)
    {
        budget.Step(s.Length);
        var max = maxSplit is null ? -1 : (int)Math.Clamp(ToInt(maxSplit), -1, int.MaxValue);
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

    /// str.format with positional fields ({} and {0}); format specs and named fields are errors.
    private string Format(string format, List<object?> args)
    {
        var sb = new StringBuilder();
        int next = 0;
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] == '{' && i + 1 < format.Length && format[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (format[i] == '}' && i + 1 < format.Length && format[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (format[i] == '}') throw new JinjaException("format: single '}' encountered in format string");
            if (format[i] != '{') { sb.Append(format[i]); continue; }
            var close = format.IndexOf('}', i);
            if (close < 0) throw new JinjaException("format: single '{' encountered in format string");
            var field = format[(i + 1)..close];
            if (field.Length > 0 && !int.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                throw new JinjaException($"format: field '{{{field}}}' is not supported (positional fields only)");
            var value = Str(field.Length == 0 ? Arg(args, next++, "format") : Arg(args, int.Parse(field, CultureInfo.InvariantCulture), "format"));
            budget.CheckString((long)sb.Length + value.Length, "format");
            sb.Append(value);
            i = close;
        }
        return sb.ToString();
    }

    private JinjaCallable? DictMethod(OrderedDictionary<string, object?> d, string name) => name switch
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
