using R1Sharp.Training.Rl;

namespace R1Sharp.Tests;

public class MathAnswerTests
{
    [Theory]
    [InlineData("so the answer is \\boxed{42}.", "42")]
    [InlineData("\\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}")]          // the last box
    [InlineData("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}")]          // nested braces
    [InlineData("<think>…</think><answer> 7 </answer>", " 7 ")]
    [InlineData("<answer>3</answer> and later \\boxed{4}", "4")]                     // a box wins over the tag
    [InlineData("no final answer here", null)]
    [InlineData("\\boxed{unclosed", null)]
    [InlineData("\\boxed{3} and then \\boxed{4", "3")]                          // cut off inside the last box
    [InlineData("\\boxed{\\boxed{5}}", "5")]
    public void TheFinalAnswerIsTheLastBoxElseTheAnswerTag(string completion, string? expected) =>
        Assert.Equal(expected, MathAnswer.Extract(completion));

    [Theory]
    [InlineData("42", "42", true)]
    [InlineData("42.0", "42", true)]
    [InlineData("0.5", "\\frac{1}{2}", true)]
    [InlineData("\\dfrac{3}{6}", "1/2", true)]
    [InlineData("\\frac34", "0.75", true)]
    [InlineData("-\\frac{1}{2}", "\\frac{-1}{2}", true)]
    [InlineData("2\\frac{1}{3}", "7/3", true)]
    [InlineData("1,234,567", "1234567", true)]
    [InlineData("1{,}234", "1234", true)]
    [InlineData("$12$", "12", true)]
    [InlineData("x = 5", "5", true)]
    [InlineData("\\left(3\\right)", "3", true)]
    [InlineData("90^\\circ", "90", true)]
    [InlineData("50\\%", "50", true)]
    [InlineData("5 \\text{ cm}", "5", true)]
    [InlineData("12\\text{ cm}^2", "12", true)]
    [InlineData("\\$1,000", "1000", true)]
    [InlineData("\\$18", "18", true)]
    [InlineData("\\mathbf{12}", "12", true)]
    [InlineData("3.", "3", true)]
    [InlineData("0.333", "1/3", false)]                    // exact, not approximate
    [InlineData("1,23", "123", false)]                     // not a thousands separator
    [InlineData("12", "21", false)]
    [InlineData("-4", "4", false)]
    [InlineData("\\frac{1}{0}", "1", false)]
    [InlineData("", "0", false)]
    [InlineData("x^2+1", "x^2 + 1", true)]                 // not numbers: compared as normalised text
    [InlineData("(1, 2)", "(1,2)", true)]
    [InlineData("100000000000000000000000000001", "100000000000000000000000000001.0", true)]   // beyond 64 bits
    public void AnswersAreComparedAsExactNumbers(string answer, string reference, bool equal) =>
        Assert.Equal(equal, MathAnswer.Equivalent(answer, reference));

    [Fact]
    public void HostileAnswersAreRefusedNotRecursedInto()
    {
        // Beyond 1,000 characters answers are compared as text: no deep recursion, no huge BigIntegers.
        Assert.False(MathAnswer.Equivalent(new string('9', 100_000), "9"));
        Assert.False(MathAnswer.Equivalent(string.Concat(Enumerable.Repeat("\\frac{", 400)) + "1" + new string('}', 400), "1"));
        Assert.Null(MathAnswer.Extract(new string('{', 50_000)));
        Assert.Equal("1", MathAnswer.Extract("\\boxed{1}" + string.Concat(Enumerable.Repeat("\\boxed{", 50_000))));   // one pass, not one per box
        Assert.True(MathAnswer.Equivalent(string.Concat(Enumerable.Repeat("\\frac{", 100_000)), string.Concat(Enumerable.Repeat("\\frac{", 100_000))));
    }
}
