using System.Text;
using static R1Sharp.Templates.JinjaValues;

namespace R1Sharp.Templates;

/// Renders parsed templates with Jinja's semantics: block-scoped loops (hence `namespace`), Python
/// truthiness and operators, Undefined for missing names and keys. One interpreter renders once, within
/// its budget.
public sealed class JinjaInterpreter
{
    private readonly RenderBudget _budget = new();
    private readonly JinjaFunctions _functions;

    private enum Flow { Normal, Break, Continue }

    private sealed class Frame(Frame? parent)
    {
        public readonly Dictionary<string, object?> Variables = [];
        public Frame? Parent => parent;

        public bool TryGet(string name, out object? value)
        {
            for (var f = this; f is not null; f = f.Parent)
                if (f.Variables.TryGetValue(name, out value)) return true;
            value = null;
            return false;
        }
    }

    private readonly Frame _globals = new(null);

    public JinjaInterpreter(IReadOnlyDictionary<string, object?> variables)
    {
        _functions = new JinjaFunctions(_budget);
        _globals.Variables["namespace"] = (JinjaCallable)((args, kwargs) =>
        {
            var values = new Dictionary<string, object?>();
            if (args.Count > 0 && args[0] is OrderedDictionary<string, object?> d) foreach (var (k, v) in d) values[k] = v;
            foreach (var (k, v) in kwargs) values[k] = v;
            return new Namespace(values);
        });
        _globals.Variables["range"] = (JinjaCallable)((args, _) =>
        {
            var n = args.Select(a => a is double ? throw new JinjaException("range() needs integers, got a float") : ToInt(a)).ToArray();
            var (start, stop, step) = n.Length switch { 1 => (0L, n[0], 1L), 2 => (n[0], n[1], 1L), 3 => (n[0], n[1], n[2]), _ => throw new JinjaException("range() takes 1 to 3 arguments") };
            if (step == 0) throw new JinjaException("range() step must not be zero");
            var count = step > 0 ? (stop > start ? ((System.Numerics.BigInteger)stop - start + step - 1) / step : 0) : (start > stop ? ((System.Numerics.BigInteger)start - stop - step - 1) / -step : 0);
            _budget.CheckList(count > int.MaxValue ? long.MaxValue : (long)count, "range()");
            var list = new List<object?>((int)count);
            for (var i = start; step > 0 ? i < stop : i > stop; i += step) list.Add(i);
            return list;
        });
        _globals.Variables["raise_exception"] = (JinjaCallable)((args, _) => throw new JinjaException(args.Count > 0 ? Str(args[0]) : "raise_exception"));
        _globals.Variables["strftime_now"] = (JinjaCallable)((args, _) => JinjaFunctions.Strftime(DateTime.Now, args.Count > 0 ? Str(args[0]) : "%Y-%m-%d"));
        _globals.Variables["dict"] = (JinjaCallable)((_, kwargs) => new OrderedDictionary<string, object?>(kwargs));
        var root = new Frame(_globals);
        foreach (var (k, v) in variables) root.Variables[k] = v;
        _root = root;
    }

    private readonly Frame _root;

    private StringBuilder? _output;
    private readonly List<(int Start, int End)> _generated = [];
    private int _generationDepth;

    /// Where the output's `{% generation %}` blocks wrote (character offsets), after Render.
    public IReadOnlyList<(int Start, int End)> GeneratedSpans => _generated;

    public string Render(List<Node> nodes)
    {
        _output = new StringBuilder();
        Execute(nodes, _root, _output);
        return _output.ToString();
    }

    private Flow Execute(List<Node> nodes, Frame frame, StringBuilder output)
    {
        foreach (var node in nodes)
        {
            var flow = Execute(node, frame, output);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    private Flow Execute(Node node, Frame frame, StringBuilder output)
    {
        _budget.Step();
        RenderBudget.EnsureStack();
        switch (node)
        {
            case TextNode t: Write(output, t.Text); return Flow.Normal;
            case OutputNode o: Write(output, Str(Evaluate(o.Value, frame))); return Flow.Normal;
            case IfNode i:
                foreach (var (condition, body) in i.Branches)
                    if (Truthy(Evaluate(condition, frame))) return Execute(body, frame, output);
                return i.Else is null ? Flow.Normal : Execute(i.Else, frame, output);
            case ForNode f: return ExecuteFor(f, frame, output);
            case SetNode s:
                var value = Evaluate(s.Value, frame);
                if (s.Attribute is null) { frame.Variables[s.Name] = value; return Flow.Normal; }
                if (!frame.TryGet(s.Name, out var target) || target is not Namespace ns)
                    throw new JinjaException($"cannot assign attribute on non-namespace object '{s.Name}'");
                ns.Values[s.Attribute] = value;
                return Flow.Normal;
            case SetBlockNode b:
                var captured = new StringBuilder();
                Execute(b.Body, frame, captured);
                frame.Variables[b.Name] = captured.ToString();
                return Flow.Normal;
            case MacroNode m: frame.Variables[m.Name] = Macro(m); return Flow.Normal;
            case BlockNode b: return Execute(b.Body, frame, output);
            case GenerationNode g:
                var start = output.Length;
                _generationDepth++;
                Flow flow;
                try { flow = Execute(g.Body, frame, output); }
                finally { _generationDepth--; }
                // The outermost blocks written to the document itself count (not those a set block or macro captured).
                if (_generationDepth == 0 && ReferenceEquals(output, _output) && output.Length > start) _generated.Add((start, output.Length));
                return flow;
            case BreakNode: return Flow.Break;
            case ContinueNode: return Flow.Continue;
            default: throw new JinjaException($"unknown node {node.GetType().Name}");
        }
    }

    private void Write(StringBuilder output, string text)
    {
        RenderBudget.CheckLength((long)output.Length + text.Length, "the template's output");
        _budget.Step(text.Length / 64);
        output.Append(text);
    }

    private Flow ExecuteFor(ForNode f, Frame frame, StringBuilder output)
    {
        var iterable = Evaluate(f.Iterable, frame);
        if (iterable is string text) _budget.Step(text.Length);
        var items = Iterate(iterable).ToList();
        _budget.Step(items.Count);
        if (f.Filter is not null)
            items = items.Where(item => { var probe = new Frame(frame); Bind(probe, f.Targets, item); return Truthy(Evaluate(f.Filter, probe)); }).ToList();
        if (items.Count == 0) return f.Else is null ? Flow.Normal : Execute(f.Else, frame, output);
        for (int i = 0; i < items.Count; i++)
        {
            var inner = new Frame(frame);
            Bind(inner, f.Targets, items[i]);
            var index = i;
            inner.Variables["loop"] = new OrderedDictionary<string, object?>
            {
                ["index"] = (long)i + 1, ["index0"] = (long)i, ["revindex"] = (long)(items.Count - i), ["revindex0"] = (long)(items.Count - i - 1),
                ["first"] = i == 0, ["last"] = i == items.Count - 1, ["length"] = (long)items.Count,
                ["previtem"] = i > 0 ? items[i - 1] : new Undefined("loop.previtem"),
                ["nextitem"] = i + 1 < items.Count ? items[i + 1] : new Undefined("loop.nextitem"),
                ["cycle"] = (JinjaCallable)((args, _) => args.Count == 0 ? throw new JinjaException("loop.cycle() needs arguments") : args[index % args.Count]),
            };
            if (Execute(f.Body, inner, output) == Flow.Break) break;
        }
        return Flow.Normal;
    }

    private static void Bind(Frame frame, List<string> targets, object? item)
    {
        if (targets.Count == 1) { frame.Variables[targets[0]] = item; return; }
        var parts = Iterate(item).ToList();
        if (parts.Count != targets.Count) throw new JinjaException($"cannot unpack {parts.Count} values into {targets.Count} names");
        for (int i = 0; i < targets.Count; i++) frame.Variables[targets[i]] = parts[i];
    }

    private JinjaCallable Macro(MacroNode m) => (args, kwargs) =>
    {
        using var call = _budget.Call(m.Name);
        var frame = new Frame(_root);
        for (int i = 0; i < m.Parameters.Count; i++)
        {
            var (name, fallback) = m.Parameters[i];
            frame.Variables[name] = i < args.Count ? args[i]
                : kwargs.TryGetValue(name, out var v) ? v
                : fallback is not null ? Evaluate(fallback, frame) : new Undefined(name);
        }
        var output = new StringBuilder();
        Execute(m.Body, frame, output);
        return output.ToString();
    };

    public static IEnumerable<object?> Iterate(object? value) => value switch
    {
        List<object?> l => l,
        OrderedDictionary<string, object?> d => d.Keys.Cast<object?>(),
        string s => StringElements(s),
        Undefined or null => value is null ? throw new JinjaException("'NoneType' object is not iterable") : [],
        _ => throw new JinjaException($"'{TypeName(value)}' object is not iterable"),
    };

    private static IEnumerable<object?> StringElements(string s)
    {
        for (int i = 0; i < s.Length; i += char.IsSurrogatePair(s, i) ? 2 : 1) yield return s.Substring(i, char.IsSurrogatePair(s, i) ? 2 : 1);
    }

    private object? Evaluate(Expr expr, Frame frame)
    {
        _budget.Step();
        RenderBudget.EnsureStack();
        switch (expr)
        {
            case LiteralExpr l: return l.Value;
            case NameExpr n: return frame.TryGet(n.Name, out var v) ? v : new Undefined(n.Name);
            case ListExpr l: return l.Items.Select(i => Evaluate(i, frame)).ToList();
            case DictExpr d:
                var dict = new OrderedDictionary<string, object?>();
                foreach (var (k, val) in d.Items) dict[Str(Evaluate(k, frame))] = Evaluate(val, frame);
                return dict;
            case AttributeExpr a: return _functions.Attribute(Evaluate(a.Target, frame), a.Name);
            case ItemExpr i: return _functions.Item(Evaluate(i.Target, frame), Evaluate(i.Index, frame));
            case SliceExpr s:
                return _functions.Slice(Evaluate(s.Target, frame), Optional(s.Start, frame), Optional(s.Stop, frame), Optional(s.Step, frame));
            case CallExpr c:
                var function = Evaluate(c.Function, frame);
                if (function is not JinjaCallable callable)
                    throw new JinjaException(function is Undefined u ? $"'{u.Name}' is undefined" : $"'{TypeName(function)}' object is not callable");
                return callable(c.Args.Select(x => Evaluate(x, frame)).ToList(), c.Kwargs.ToDictionary(p => p.Name, p => Evaluate(p.Value, frame)));
            case FilterExpr f:
                return _functions.Filter(f.Name, Evaluate(f.Value, frame), f.Args.Select(x => Evaluate(x, frame)).ToList(),
                    f.Kwargs.ToDictionary(p => p.Name, p => Evaluate(p.Value, frame)));
            case TestExpr t:
                var result = _functions.Test(t.Name, Evaluate(t.Value, frame), t.Args.Select(x => Evaluate(x, frame)).ToList());
                return t.Negated ? !result : result;
            case UnaryExpr u:
                var operand = Evaluate(u.Operand, frame);
                return u.Operator switch
                {
                    "not" => !Truthy(operand),
                    "-" => operand switch
                    {
                        long.MinValue => throw new JinjaException("integer overflow: -(-9223372036854775808) does not fit in 64 bits"),
                        long l => (object)(-l), double d => -d, bool b => b ? -1L : 0L,
                        _ => throw new JinjaException($"bad operand type for unary -: '{TypeName(operand)}'"),
                    },
                    _ => operand,
                };
            case BinaryExpr b when b.Operator == "and":
                var left = Evaluate(b.Left, frame);
                return Truthy(left) ? Evaluate(b.Right, frame) : left;
            case BinaryExpr b when b.Operator == "or":
                var first = Evaluate(b.Left, frame);
                return Truthy(first) ? first : Evaluate(b.Right, frame);
            case BinaryExpr b: return _functions.Binary(b.Operator, Evaluate(b.Left, frame), Evaluate(b.Right, frame));
            case ConditionalExpr c:
                return Truthy(Evaluate(c.Condition, frame)) ? Evaluate(c.Then, frame) : c.Else is null ? new Undefined("else") : Evaluate(c.Else, frame);
            default: throw new JinjaException($"unknown expression {expr.GetType().Name}");
        }
    }

    private object? Optional(Expr? e, Frame frame) => e is null ? null : Evaluate(e, frame);
}
