namespace R1Sharp.Training.Tasks;

/// Exact evaluation of integer expressions with + - * / ( ) (recursive descent over rationals).
/// Unary minus is rejected: countdown answers combine the given numbers only.
public static class ExpressionEvaluator
{
    public readonly record struct Rational(long Numerator, long Denominator)
    {
        public static Rational Of(long n) => new(n, 1);
        public Rational Normalize()
        {
            if (Denominator == 0) throw new DivideByZeroException();
            var g = Gcd(Math.Abs(Numerator), Math.Abs(Denominator));
            var sign = Denominator < 0 ? -1 : 1;
            return g == 0 ? new(0, 1) : new(sign * Numerator / g, sign * Denominator / g);
        }
        private static long Gcd(long a, long b) => b == 0 ? a : Gcd(b, a % b);
        public bool IsInteger => Denominator == 1;

        public static Rational Apply(char op, Rational a, Rational b) => checked(op switch
        {
            '+' => new Rational(a.Numerator * b.Denominator + b.Numerator * a.Denominator, a.Denominator * b.Denominator),
            '-' => new Rational(a.Numerator * b.Denominator - b.Numerator * a.Denominator, a.Denominator * b.Denominator),
            '*' => new Rational(a.Numerator * b.Numerator, a.Denominator * b.Denominator),
            _ => new Rational(a.Numerator * b.Denominator, a.Denominator * b.Numerator),
        }).Normalize();
    }

    /// The value when `text` is a well-formed expression with an integer value, else null; `numbers` lists the literals used.
    public static long? TryEvaluate(string text, out List<long> numbers)
    {
        numbers = [];
        var parser = new Parser(text.Replace('×', '*').Replace('÷', '/').Replace('x', '*'), numbers);
        try
        {
            var value = parser.Expression();
            parser.SkipSpaces();
            if (!parser.AtEnd) return null;
            return value.IsInteger ? value.Numerator : null;
        }
        catch (Exception e) when (e is FormatException or DivideByZeroException or OverflowException)
        {
            return null;
        }
    }

    private sealed class Parser(string text, List<long> numbers)
    {
        private int _at;
        public bool AtEnd => _at >= text.Length;

        public void SkipSpaces() { while (!AtEnd && char.IsWhiteSpace(text[_at])) _at++; }

        public Rational Expression() => Chain(Term, '+', '-');

        private Rational Term() => Chain(Factor, '*', '/');

        /// operand (op operand)*, left-associative.
        private Rational Chain(Func<Rational> operand, char first, char second)
        {
            var value = operand();
            while (true)
            {
                SkipSpaces();
                if (AtEnd || (text[_at] != first && text[_at] != second)) return value;
                var op = text[_at++];
                value = Rational.Apply(op, value, operand());
            }
        }

        private Rational Factor()
        {
            SkipSpaces();
            if (AtEnd) throw new FormatException();
            if (text[_at] == '(')
            {
                _at++;
                var inner = Expression();
                SkipSpaces();
                if (AtEnd || text[_at] != ')') throw new FormatException();
                _at++;
                return inner;
            }
            var start = _at;
            while (!AtEnd && char.IsAsciiDigit(text[_at])) _at++;
            if (_at == start || _at - start > 9) throw new FormatException();
            var n = long.Parse(text.AsSpan(start, _at - start));
            numbers.Add(n);
            return Rational.Of(n);
        }
    }
}
