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

        public Rational Expression()
        {
            var value = Term();
            while (true)
            {
                SkipSpaces();
                if (AtEnd || (text[_at] != '+' && text[_at] != '-')) return value;
                var op = text[_at++];
                var right = Term();
                value = checked(op == '+'
                    ? new Rational(value.Numerator * right.Denominator + right.Numerator * value.Denominator, value.Denominator * right.Denominator)
                    : new Rational(value.Numerator * right.Denominator - right.Numerator * value.Denominator, value.Denominator * right.Denominator)).Normalize();
            }
        }

        private Rational Term()
        {
            var value = Factor();
            while (true)
            {
                SkipSpaces();
                if (AtEnd || (text[_at] != '*' && text[_at] != '/')) return value;
                var op = text[_at++];
                var right = Factor();
                value = checked(op == '*'
                    ? new Rational(value.Numerator * right.Numerator, value.Denominator * right.Denominator)
                    : new Rational(value.Numerator * right.Denominator, value.Denominator * right.Numerator)).Normalize();
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
