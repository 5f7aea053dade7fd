using System.Text.Json.Nodes;
using R1Sharp.Templates;

namespace R1Sharp.Tests;

/// A chat template is a file from a model folder and may be hostile: recursion, nesting, size and time
/// bombs and runtime failures end in one template error, never a crash, a hang or "internal error".
public class TemplateLimitTests
{
    private static string Render(string source) =>
        ChatTemplate.Parse(source).Render(new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }), addGenerationPrompt: true);

    private static void Refused(string source, string expected)
    {
        var error = Assert.Throws<R1SharpException>(() => Render(source));
        Assert.StartsWith("chat template: ", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void RecursionAndNestingAreTemplateErrors()
    {
        Refused("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}", "macro calls nest deeper than");
        Refused("{{ " + new string('(', 20_000) + "1" + new string(')', 20_000) + " }}", "nest deeper than 100");
        Refused(string.Concat(Enumerable.Repeat("{% if true %}", 5000)) + "x" + string.Concat(Enumerable.Repeat("{% endif %}", 5000)), "nest deeper than 100");
        Refused("{{ " + string.Concat(Enumerable.Repeat("- ", 20_000)) + "1 }}", "nest deeper than 100");
        Refused("{{ " + string.Concat(Enumerable.Repeat("not ", 20_000)) + "1 }}", "nest deeper than 100");
        Refused("{{ " + string.Concat(Enumerable.Repeat("[", 5000)) + string.Concat(Enumerable.Repeat("]", 5000)) + " }}", "nest deeper than 100");
        Refused("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns | tojson }}", "nests deeper than");
        // Deep but legitimate nesting still renders.
        Assert.Equal("3", Render("{{ " + new string('(', 50) + "1 + 2" + new string(')', 50) + " }}"));
        Assert.Equal("120", Render("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}{{ fact(5) }}"));
    }

    [Fact]
    public void SizeAndTimeBombsAreTemplateErrors()
    {
        Refused("{% for i in range(10**9) %}{% endfor %}", "range() would make a list");
        Refused("{{ 'a' * 10**10 }}", "would make a string");
        Refused("{{ ([1] * 10**8) | length }}", "would make a list");
        Refused("{{ [[[1]]] | tojson(indent=10**8) }}", "longer than");
        Refused("{% for i in range(3000) %}{% for j in range(3000) %}{% endfor %}{% endfor %}", "too much work");
        Refused("{% set s = 'a' * 1000000 %}{{ s | replace('a', s) }}", "would make a string");
        Refused("{% set s = 'ab' * 100000 %}{% for i in range(200) %}{{ s }}{% endfor %}", "the template's output would make a string");
        Refused("{% set l = range(1000000) | list %}{{ l | unique | length }}", "too much work");
    }

    [Fact]
    public void IntegersFollowPythonOrFailClearly()
    {
        Refused("{{ 9223372036854775807 + 1 }}", "integer overflow");
        Refused("{{ -9223372036854775807 - 2 }}", "integer overflow");
        Refused("{{ 2 ** 64 }}", "integer overflow");
        Refused("{{ 99999999999999999999 }}", "does not fit in 64 bits");
        Assert.Equal("9223372036854775807", Render("{{ 9223372036854775806 + 1 }}"));
        Assert.Equal("-4 1 -3 5", Render("{{ -7 // 2 }} {{ -7 % 2 }} {{ 7 // -3 }} {{ 9007199254740993 % 7 }}"));   // floor division as Python, exact past 2^53
        Assert.Equal("1 0.5 1 -1", Render("{{ 1 ** 100 }} {{ 2 ** -1 }} {{ (-1) ** 1000 }} {{ (-1) ** 1001 }}"));
    }

    [Fact]
    public void RuntimeFailuresAreTemplateErrorsAndPythonCornersMatch()
    {
        Refused("{{ '{'.format() }}", "single '{'");
        Refused("{{ '}'.format() }}", "single '}'");
        Refused("{{ '{0}'.format() }}", "needs argument");
        Refused("{{ 10 is divisibleby 0 }}", "division or modulo by zero");
        Refused("{{ 1 // 0 }}", "division or modulo by zero");
        Refused("{{ range(1.5) }}", "needs integers");
        // As Jinja2 under transformers' settings (checked with python3-jinja2): negative widths indent nothing,
        // json.dumps with a negative indent breaks lines without spaces, round() past float precision keeps the value.
        Assert.Equal("ab\ncd", Render("{{ 'ab\\ncd' | indent(-5) }}"));
        Assert.Equal("[\n1,\n2\n]", Render("{{ [1, 2] | tojson(indent=-1) }}"));
        Assert.Equal("2.5 1200.0 100", Render("{{ 2.5 | round(100) }} {{ 1234.5 | round(-2) }} {{ 100 | round | int }}"));
    }
}
