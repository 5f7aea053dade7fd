using System.Text;

namespace R1Sharp.Training.Tasks;

/// Multi-digit addition and subtraction with a column-by-column trace. Difficulty = digits per operand.
public sealed class ArithmeticTask(int digits) : IVerifiableTask
{
    public string Name => "arithmetic";

    public TaskProblem Generate(Random random)
    {
        if (digits < 1 || digits > 9) throw new R1SharpException("arithmetic difficulty (digits) must be 1..9");
        int low = digits == 1 ? 0 : (int)Math.Pow(10, digits - 1), high = (int)Math.Pow(10, digits);
        int a = random.Next(low, high), b = random.Next(low, high);
        var add = random.Next(2) == 0;
        if (!add && b > a) (a, b) = (b, a);
        var result = add ? a + b : a - b;
        return new TaskProblem(Name, $"{a} {(add ? '+' : '-')} {b} =", add ? AdditionTrace(a, b) : SubtractionTrace(a, b), result.ToString());
    }

    private static string AdditionTrace(int a, int b)
    {
        var trace = new StringBuilder();
        int carry = 0;
        for (int column = 0; a > 0 || b > 0; column++, a /= 10, b /= 10)
        {
            int x = a % 10, y = b % 10, sum = x + y + carry;
            trace.Append($"{x}+{y}{(carry > 0 ? "+1" : "")}={sum}");
            carry = sum / 10;
            trace.Append(carry > 0 ? " carry 1. " : ". ");
        }
        if (carry > 0) trace.Append("1. ");
        return trace.ToString().TrimEnd();
    }

    private static string SubtractionTrace(int a, int b)
    {
        var trace = new StringBuilder();
        int borrow = 0;
        for (; a > 0 || b > 0; a /= 10, b /= 10)
        {
            int x = a % 10 - borrow, y = b % 10;
            borrow = x < y ? 1 : 0;
            trace.Append($"{(borrow > 0 ? x + 10 : x)}-{y}={(borrow > 0 ? x + 10 : x) - y}{(borrow > 0 ? " borrow 1" : "")}. ");
        }
        return trace.ToString().TrimEnd();
    }

    public bool Verify(TaskProblem problem, string answer) =>
        long.TryParse(answer.Trim(), System.Globalization.NumberStyles.AllowLeadingSign, null, out var value) && value.ToString() == problem.Answer;
}
