using System.Numerics;
using System.Text.RegularExpressions;

namespace R1Sharp.Training.Rl;

/// The math answer verifier of R1-style training: the final answer is the last `\boxed{…}` of a
/// completion (braces balanced), else its last answer block (`<answer>…</answer>` by default); it is correct when it and the
/// reference denote the same number — compared exactly as rationals — or, when either is not a
/// number, the same text after removing LaTeX spacing and wrappers. Numbers: integers (thousands
/// separators `1,234,567` or `1{,}234`), decimals, `a/b`, `\frac{a}{b}` (`\dfrac`, `\tfrac`, `\frac34`),
/// a mixed number `2\frac{1}{3}`, a sign, `x = …` (the right-hand side), and decorations that do not
/// change the value: `$…$`, `\left( \right)`, `\text{…}` units, `^\circ`, `\%`, a trailing period.
public static class MathAnswer
{
    private const int MaxLength = 1000;   // longer "answers" are compared as text only

    public static string? Extract(string completion, FormatTags? tags = null) =>
        LastBoxed(completion) ?? (tags ?? FormatTags.R1Zero).LastAnswer(completion);

    /// The content of the last `\boxed{…}` (or `\fbox{…}`) that closes, found in one pass over the braces
    /// (a completion cut off inside its last box still has the one before).
    private static string? LastBoxed(string text)
    {
        var open = new Stack<(int At, bool Box)>();
        (int Start, int End)? last = null;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '{') open.Push((i, OpensBox(text, i)));
            else if (text[i] == '}' && open.TryPop(out var brace) && brace.Box && (last is null || brace.At > last.Value.Start)) last = (brace.At, i);
        }
        return last is { } box ? text[(box.Start + 1)..box.End] : null;
    }

    private static bool OpensBox(string text, int brace) =>
        (brace >= 6 && string.CompareOrdinal(text, brace - 6, "\\boxed", 0, 6) == 0) || (brace >= 5 && string.CompareOrdinal(text, brace - 5, "\\fbox", 0, 5) == 0);

    public static bool Equivalent(string answer, string reference)
    {
        var a = Normalize(answer);
        var b = Normalize(reference);
        if (a.Length == 0 || b.Length == 0) return false;
        var x = Parse(a);
        var y = Parse(b);
        if (x is not null && y is not null) return x.Value == y.Value;
        return a == b;
    }

    /// LaTeX and wrappers that do not change what the answer says, removed; `x = 5` becomes `5`.
    public static string Normalize(string text)
    {
        var s = text.Trim();
        if (s.Length > MaxLength) return s;
        // A unit (with its power: `\text{ cm}^2`) goes; a wrapped value (`\mathbf{12}`) stays.
        s = Regex.Replace(s, @"\\(?:text|mathrm|textbf|textit|mathbf|mathit|boldsymbol|mbox)\{([^{}]*)\}(\^\{?\d\}?)?", m => IsUnit(m.Groups[1].Value) ? "" : m.Groups[1].Value + m.Groups[2].Value);
        foreach (var remove in new[] { "\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\ ", "\\$", "$", "\\displaystyle", "^\\circ", "^{\\circ}", "\\circ", "\\%", "%", "°" })
            s = s.Replace(remove, "");
        s = s.Replace("\\dfrac", "\\frac").Replace("\\tfrac", "\\frac").Replace("{,}", ",");
        s = Regex.Replace(s, @"\s+", "");
        var eq = s.LastIndexOf('=');
        if (eq >= 0 && eq < s.Length - 1 && Regex.IsMatch(s[..eq], @"^[A-Za-z](_\{?\w+\}?)?$")) s = s[(eq + 1)..];
        s = s.TrimEnd('.');
        while (s.Length >= 2 && ((s[0] == '(' && s[^1] == ')' && Balanced(s[1..^1], '(', ')')) || (s[0] == '{' && s[^1] == '}' && Balanced(s[1..^1], '{', '}'))))
            s = s[1..^1];
        return s;
    }

    private static bool IsUnit(string text) => Regex.IsMatch(text.Trim(), @"^[A-Za-z\s\.\^0-9]*$") && text.Trim().Length > 0 && !Regex.IsMatch(text.Trim(), @"^[0-9.]+$");

    private static bool Balanced(string s, char open, char close)
    {
        int depth = 0;
        foreach (var c in s)
        {
            if (c == open) depth++;
            else if (c == close && --depth < 0) return false;
        }
        return depth == 0;
    }

    /// The exact value of a normalised answer, or null when it is not one number.
    public static Rational? Parse(string s)
    {
        if (s.Length == 0 || s.Length > MaxLength) return null;
        int sign = 1;
        if (s[0] is '-' or '+' || s.StartsWith("−", StringComparison.Ordinal))
        {
            sign = s[0] == '+' ? 1 : -1;
            s = s[1..];
        }
        if (s.Length == 0) return null;
        Rational? value;
        var mixed = Regex.Match(s, @"^(\d+)(\\frac.*)$");
        if (mixed.Success && Fraction(mixed.Groups[2].Value) is { } part && part.Numerator.Sign >= 0)
            value = Rational.Of(BigInteger.Parse(mixed.Groups[1].Value)) + part;
        else value = Fraction(s) ?? Slash(s) ?? Decimal(s);
        return value is { } v ? (sign < 0 ? -v : v) : null;
    }

    private static Rational? Fraction(string s)
    {
        if (!s.StartsWith("\\frac", StringComparison.Ordinal)) return null;
        var rest = s[5..];
        var (top, afterTop) = Argument(rest);
        if (top is null) return null;
        var (bottom, afterBottom) = Argument(afterTop);
        if (bottom is null || afterBottom.Length > 0) return null;
        var n = Parse(Normalize(top));
        var d = Parse(Normalize(bottom));
        return n is null || d is null || d.Value.Numerator.IsZero ? null : n.Value / d.Value;
    }

    /// A LaTeX macro argument: `{…}` or a single character (`\frac34`).
    private static (string? Value, string Remaining) Argument(string s)
    {
        if (s.Length == 0) return (null, s);
        if (s[0] != '{') return (s[..1], s[1..]);
        int depth = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '{') depth++;
            else if (s[i] == '}' && --depth == 0) return (s[1..i], s[(i + 1)..]);
        }
        return (null, s);
    }

    private static Rational? Slash(string s)
    {
        var parts = s.Split('/');
        if (parts.Length != 2) return null;
        var n = Parse(parts[0]);
        var d = Parse(parts[1]);
        return n is null || d is null || d.Value.Numerator.IsZero ? null : n.Value / d.Value;
    }

    private static readonly Regex DecimalNumber = new(@"^(\d{1,3}(?:,\d{3})+|\d+)?(?:\.(\d+))?$", RegexOptions.Compiled);

    private static Rational? Decimal(string s)
    {
        var m = DecimalNumber.Match(s);
        if (!m.Success || (!m.Groups[1].Success && !m.Groups[2].Success)) return null;
        var whole = m.Groups[1].Success ? BigInteger.Parse(m.Groups[1].Value.Replace(",", "")) : BigInteger.Zero;
        if (!m.Groups[2].Success) return Rational.Of(whole);
        var digits = m.Groups[2].Value;
        var scale = BigInteger.Pow(10, digits.Length);
        return new Rational(whole * scale + BigInteger.Parse(digits), scale).Reduced();
    }
}

/// An exact rational number (reduced, positive denominator).
public readonly record struct Rational(BigInteger Numerator, BigInteger Denominator)
{
    public static Rational Of(BigInteger n) => new(n, BigInteger.One);

    public Rational Reduced()
    {
        var g = BigInteger.GreatestCommonDivisor(Numerator, Denominator);
        if (g.IsZero) return new(0, 1);
        var sign = Denominator.Sign < 0 ? -1 : 1;
        return new(sign * Numerator / g, sign * Denominator / g);
    }

    public static Rational operator +(Rational a, Rational b) => new Rational(a.Numerator * b.Denominator + b.Numerator * a.Denominator, a.Denominator * b.Denominator).Reduced();
    public static Rational operator -(Rational a) => new(-a.Numerator, a.Denominator);
    public static Rational operator /(Rational a, Rational b) => new Rational(a.Numerator * b.Denominator, a.Denominator * b.Numerator).Reduced();

    public override string ToString() => Denominator.IsOne ? Numerator.ToString() : $"{Numerator}/{Denominator}";
}
