using System.Globalization;

namespace R1Sharp.Templates;

/// Parses the Jinja subset chat templates use: if/elif/else, for (with loop filters and else), set
/// (incl. namespace attributes and blocks), macro, break/continue, generation blocks, and Jinja's
/// expression grammar. Anything else is an error naming the construct.
public sealed class JinjaParser
{
    /// Deeper nesting of blocks or expressions is an error, not a stack overflow (Python's own parser
    /// stops at 200 nested parentheses; chat templates nest a handful).
    public const int MaxNesting = 100;
    private readonly List<JinjaToken> _tokens;
    private int _pos;
    private int _depth;

    private JinjaParser(List<JinjaToken> tokens) => _tokens = tokens;

    public static List<Node> Parse(string source)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(source));
        var body = parser.ParseBody([]);
        if (parser.Peek.Kind != TokenKind.End) throw parser.Error($"unexpected '{parser.PeekTagName()}'");
        return body;
    }

    private JinjaToken Peek => _tokens[_pos];
    private JinjaToken Next() => _tokens[_pos++];
    private JinjaException Error(string message) => new($"template line {Peek.Line}: {message}");

    private string PeekTagName() =>
        Peek.Kind == TokenKind.BlockBegin && _tokens[_pos + 1].Kind == TokenKind.Name ? _tokens[_pos + 1].Value : Peek.Value;

    private Nesting Nest() => new(this);

    private readonly struct Nesting : IDisposable
    {
        private readonly JinjaParser _parser;

        public Nesting(JinjaParser parser)
        {
            _parser = parser;
            if (++parser._depth > MaxNesting) throw parser.Error($"blocks or expressions nest deeper than {MaxNesting} levels");
            RenderBudget.EnsureStack();
        }

        public void Dispose() => _parser._depth--;
    }

    /// Statements until one of `endTags` (left unconsumed: the caller reads it).
    private List<Node> ParseBody(string[] endTags)
    {
        using var nesting = Nest();
        var nodes = new List<Node>();
        while (true)
        {
            var t = Peek;
            switch (t.Kind)
            {
                case TokenKind.End:
                    if (endTags.Length > 0) throw Error($"missing {{% {endTags[^1]} %}}");
                    return nodes;
                case TokenKind.Text:
                    Next();
                    nodes.Add(new TextNode(t.Value));
                    break;
                case TokenKind.VariableBegin:
                    Next();
                    nodes.Add(new OutputNode(ParseExpression()));
                    Expect(TokenKind.VariableEnd, "}}");
                    break;
                case TokenKind.BlockBegin:
                    var name = PeekTagName();
                    if (endTags.Contains(name)) return nodes;
                    Next();
                    nodes.Add(ParseStatement());
                    break;
                default:
                    throw Error($"unexpected '{t.Value}'");
            }
        }
    }

    private Node ParseStatement()
    {
        var tag = Next();
        if (tag.Kind != TokenKind.Name) throw Error("expected a tag name after {%");
        switch (tag.Value)
        {
            case "if": return ParseIf();
            case "for": return ParseFor();
            case "set": return ParseSet();
            case "macro": return ParseMacro();
            case "break": EndTag(); return new BreakNode();
            case "continue": EndTag(); return new ContinueNode();
            case "generation":
                EndTag();
                var body = ParseBody(["endgeneration"]);
                CloseTag("endgeneration");
                return new GenerationNode(body);
            default:
                throw new JinjaException($"template line {tag.Line}: the tag '{tag.Value}' is not supported");
        }
    }

    private Node ParseIf()
    {
        var branches = new List<(Expr, List<Node>)>();
        var condition = ParseExpression();
        EndTag();
        while (true)
        {
            var body = ParseBody(["elif", "else", "endif"]);
            branches.Add((condition, body));
            Next();
            var tag = Next().Value;
            if (tag == "elif") { condition = ParseExpression(); EndTag(); continue; }
            EndTag();
            if (tag == "endif") return new IfNode(branches, null);
            var elseBody = ParseBody(["endif"]);
            CloseTag("endif");
            return new IfNode(branches, elseBody);
        }
    }

    private Node ParseFor()
    {
        var targets = new List<string> { ExpectName() };
        while (IsOperator(",")) { Next(); targets.Add(ExpectName()); }
        if (Next() is not { Kind: TokenKind.Name, Value: "in" }) throw Error("expected 'in' in a for loop");
        var iterable = ParseExpression(allowConditional: false);
        Expr? filter = null;
        if (Peek is { Kind: TokenKind.Name, Value: "if" }) { Next(); filter = ParseExpression(); }
        if (Peek is { Kind: TokenKind.Name, Value: "recursive" }) throw Error("recursive loops are not supported");
        EndTag();
        var body = ParseBody(["else", "endfor"]);
        List<Node>? elseBody = null;
        if (PeekTagName() == "else")
        {
            Next(); Next(); EndTag();
            elseBody = ParseBody(["endfor"]);
        }
        CloseTag("endfor");
        return new ForNode(targets, iterable, filter, body, elseBody);
    }

    private Node ParseSet()
    {
        var name = ExpectName();
        string? attribute = null;
        if (IsOperator(".")) { Next(); attribute = ExpectName(); }
        if (IsOperator(","))
            throw Error("tuple assignment in set is not supported");
        if (attribute is null && Peek.Kind == TokenKind.BlockEnd)
        {
            EndTag();
            var body = ParseBody(["endset"]);
            CloseTag("endset");
            return new SetBlockNode(name, body);
        }
        ExpectOperator("=");
        var value = ParseExpression();
        EndTag();
        return new SetNode(name, attribute, value);
    }

    private Node ParseMacro()
    {
        var name = ExpectName();
        ExpectOperator("(");
        var parameters = new List<(string, Expr?)>();
        while (!IsOperator(")"))
        {
            var p = ExpectName();
            Expr? value = null;
            if (IsOperator("=")) { Next(); value = ParseExpression(); }
            parameters.Add((p, value));
            if (!IsOperator(")")) ExpectOperator(",");
        }
        Next();
        EndTag();
        var body = ParseBody(["endmacro"]);
        CloseTag("endmacro");
        return new MacroNode(name, parameters, body);
    }

    private void CloseTag(string name)
    {
        Expect(TokenKind.BlockBegin, "{%");
        if (Next() is not { Kind: TokenKind.Name } t || t.Value != name) throw Error($"expected {{% {name} %}}");
        EndTag();
    }

    private void EndTag() => Expect(TokenKind.BlockEnd, "%}");

    private void Expect(TokenKind kind, string text)
    {
        if (Peek.Kind != kind) throw Error($"expected '{text}', found '{(Peek.Kind == TokenKind.End ? "end of template" : Peek.Value)}'");
        Next();
    }

    private string ExpectName() => Peek.Kind == TokenKind.Name ? Next().Value : throw Error($"expected a name, found '{Peek.Value}'");
    private bool IsOperator(string op) => Peek.Kind == TokenKind.Operator && Peek.Value == op;
    private bool IsName(string name) => Peek.Kind == TokenKind.Name && Peek.Value == name;

    private void ExpectOperator(string op)
    {
        if (!IsOperator(op)) throw Error($"expected '{op}', found '{Peek.Value}'");
        Next();
    }

    // Jinja's precedence, loosest first: conditional, or, and, not, comparisons/tests, ~, + -, * / // %, unary, **, filters, postfix.
    private Expr ParseExpression(bool allowConditional = true)
    {
        using var nesting = Nest();
        var value = ParseOr();
        if (!allowConditional || !IsName("if")) return value;
        Next();
        var condition = ParseOr();
        Expr? otherwise = null;
        if (IsName("else")) { Next(); otherwise = ParseExpression(); }
        return new ConditionalExpr(condition, value, otherwise);
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (IsName("or")) { Next(); left = new BinaryExpr("or", left, ParseAnd()); }
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (IsName("and")) { Next(); left = new BinaryExpr("and", left, ParseNot()); }
        return left;
    }

    private Expr ParseNot()
    {
        if (IsName("not"))
        {
            Next();
            using var nesting = Nest();
            return new UnaryExpr("not", ParseNot());
        }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var left = ParseConcat();
        while (true)
        {
            if (Peek.Kind == TokenKind.Operator && Peek.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                var op = Next().Value;
                left = new BinaryExpr(op, left, ParseConcat());
            }
            else if (IsName("in")) { Next(); left = new BinaryExpr("in", left, ParseConcat()); }
            else if (IsName("not") && _tokens[_pos + 1] is { Kind: TokenKind.Name, Value: "in" })
            {
                Next(); Next();
                left = new UnaryExpr("not", new BinaryExpr("in", left, ParseConcat()));
            }
            else return left;
        }
    }

    private Expr ParseConcat()
    {
        var left = ParseAdditive();
        while (IsOperator("~")) { Next(); left = new BinaryExpr("~", left, ParseAdditive()); }
        return left;
    }

    private Expr ParseAdditive()
    {
        var left = ParseMultiplicative();
        while (Peek.Kind == TokenKind.Operator && Peek.Value is "+" or "-")
        {
            var op = Next().Value;
            left = new BinaryExpr(op, left, ParseMultiplicative());
        }
        return left;
    }

    private Expr ParseMultiplicative()
    {
        var left = ParsePower();
        while (Peek.Kind == TokenKind.Operator && Peek.Value is "*" or "/" or "//" or "%")
        {
            var op = Next().Value;
            left = new BinaryExpr(op, left, ParsePower());
        }
        return left;
    }

    private Expr ParsePower()
    {
        var left = ParseUnary();
        while (IsOperator("**")) { Next(); left = new BinaryExpr("**", left, ParseUnary()); }
        return left;
    }

    /// As Jinja: a sign applies to the operand without its filters, and filters/tests then apply to
    /// the signed value (`-x|abs` is `(-x)|abs`).
    private Expr ParseUnary(bool withFilters = true)
    {
        Expr value;
        if (Peek.Kind == TokenKind.Operator && Peek.Value is "-" or "+")
        {
            var op = Next().Value;
            using var nesting = Nest();
            value = new UnaryExpr(op, ParseUnary(withFilters: false));
        }
        else value = ParsePostfix(ParsePrimary());
        return withFilters ? ParseFiltersAndTests(value) : value;
    }

    private Expr ParseFiltersAndTests(Expr value)
    {
        while (true)
        {
            if (IsOperator("|"))
            {
                Next();
                var name = ExpectName();
                var (args, kwargs) = IsOperator("(") ? ParseArguments() : ([], []);
                value = ParsePostfix(new FilterExpr(value, name, args, kwargs));
            }
            else if (IsName("is"))
            {
                Next();
                var negated = false;
                if (IsName("not")) { Next(); negated = true; }
                var name = ExpectName();
                var args = new List<Expr>();
                if (IsOperator("(")) args = ParseArguments().Args;
                else if (Peek.Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float
                         || Peek.Kind == TokenKind.Name && Peek.Value is not ("else" or "or" or "and")
                         || IsOperator("[") || IsOperator("{"))
                    args.Add(ParsePostfix(ParsePrimary()));
                value = new TestExpr(value, name, args, negated);
            }
            else return value;
        }
    }

    private Expr ParsePostfix(Expr value)
    {
        while (true)
        {
            if (IsOperator(".")) { Next(); value = new AttributeExpr(value, Peek.Kind == TokenKind.Integer ? Next().Value : ExpectName()); }
            else if (IsOperator("[")) value = ParseSubscript(value);
            else if (IsOperator("(")) { var (args, kwargs) = ParseArguments(); value = new CallExpr(value, args, kwargs); }
            else return value;
        }
    }

    private Expr ParseSubscript(Expr target)
    {
        ExpectOperator("[");
        Expr? start = null, stop = null, step = null;
        if (!IsOperator(":")) start = ParseExpression();
        if (!IsOperator(":")) { ExpectOperator("]"); return new ItemExpr(target, start!); }
        Next();
        if (!IsOperator(":") && !IsOperator("]")) stop = ParseExpression();
        if (IsOperator(":")) { Next(); if (!IsOperator("]")) step = ParseExpression(); }
        ExpectOperator("]");
        return new SliceExpr(target, start, stop, step);
    }

    private (List<Expr> Args, List<(string, Expr)> Kwargs) ParseArguments()
    {
        ExpectOperator("(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!IsOperator(")"))
        {
            if (Peek.Kind == TokenKind.Name && _tokens[_pos + 1] is { Kind: TokenKind.Operator, Value: "=" })
            {
                var name = Next().Value;
                Next();
                kwargs.Add((name, ParseExpression()));
            }
            else args.Add(ParseExpression());
            if (!IsOperator(")")) ExpectOperator(",");
        }
        Next();
        return (args, kwargs);
    }

    private Expr ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokenKind.String:
                var s = t.Value;
                while (Peek.Kind == TokenKind.String) s += Next().Value;   // adjacent literals concatenate
                return new LiteralExpr(s);
            case TokenKind.Integer:
                return long.TryParse(t.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var integer) ? new LiteralExpr(integer)
                    : throw new JinjaException($"template line {t.Line}: the integer {t.Value} does not fit in 64 bits");
            case TokenKind.Float: return new LiteralExpr(double.Parse(t.Value, CultureInfo.InvariantCulture));
            case TokenKind.Name:
                return t.Value switch
                {
                    "true" or "True" => new LiteralExpr(true),
                    "false" or "False" => new LiteralExpr(false),
                    "none" or "None" => new LiteralExpr(null),
                    _ => new NameExpr(t.Value),
                };
            case TokenKind.Operator when t.Value == "(":
                var first = ParseExpression();
                if (IsOperator(")")) { Next(); return first; }
                var tuple = new List<Expr> { first };
                while (IsOperator(",")) { Next(); if (IsOperator(")")) break; tuple.Add(ParseExpression()); }
                ExpectOperator(")");
                return new ListExpr(tuple);
            case TokenKind.Operator when t.Value == "[":
                var items = new List<Expr>();
                while (!IsOperator("]")) { items.Add(ParseExpression()); if (!IsOperator("]")) ExpectOperator(","); }
                Next();
                return new ListExpr(items);
            case TokenKind.Operator when t.Value == "{":
                var pairs = new List<(Expr, Expr)>();
                while (!IsOperator("}"))
                {
                    var key = ParseExpression();
                    ExpectOperator(":");
                    pairs.Add((key, ParseExpression()));
                    if (!IsOperator("}")) ExpectOperator(",");
                }
                Next();
                return new DictExpr(pairs);
            default:
                _pos--;
                throw Error($"unexpected '{(t.Kind == TokenKind.End ? "end of template" : t.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd ? "end of tag" : t.Value)}'");
        }
    }
}
