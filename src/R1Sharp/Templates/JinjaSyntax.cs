namespace R1Sharp.Templates;

/// Statements of a parsed template.
public abstract record Node;
public sealed record TextNode(string Text) : Node;
public sealed record OutputNode(Expr Value) : Node;
public sealed record IfNode(List<(Expr Condition, List<Node> Body)> Branches, List<Node>? Else) : Node;
public sealed record ForNode(List<string> Targets, Expr Iterable, Expr? Filter, List<Node> Body, List<Node>? Else) : Node;
public sealed record SetNode(string Name, string? Attribute, Expr Value) : Node;
public sealed record SetBlockNode(string Name, List<Node> Body) : Node;
public sealed record MacroNode(string Name, List<(string Name, Expr? Default)> Parameters, List<Node> Body) : Node;
public sealed record BlockNode(List<Node> Body) : Node;
/// `{% generation %}…{% endgeneration %}`: what the assistant writes (transformers' `return_assistant_tokens_mask`).
public sealed record GenerationNode(List<Node> Body) : Node;
public sealed record BreakNode : Node;
public sealed record ContinueNode : Node;

/// Expressions.
public abstract record Expr;
public sealed record LiteralExpr(object? Value) : Expr;
public sealed record NameExpr(string Name) : Expr;
public sealed record ListExpr(List<Expr> Items) : Expr;
public sealed record DictExpr(List<(Expr Key, Expr Value)> Items) : Expr;
public sealed record AttributeExpr(Expr Target, string Name) : Expr;
public sealed record ItemExpr(Expr Target, Expr Index) : Expr;
public sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step) : Expr;
public sealed record CallExpr(Expr Function, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr;
public sealed record FilterExpr(Expr Value, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr;
public sealed record TestExpr(Expr Value, string Name, List<Expr> Args, bool Negated) : Expr;
public sealed record UnaryExpr(string Operator, Expr Operand) : Expr;
public sealed record BinaryExpr(string Operator, Expr Left, Expr Right) : Expr;
public sealed record ConditionalExpr(Expr Condition, Expr Then, Expr? Else) : Expr;
