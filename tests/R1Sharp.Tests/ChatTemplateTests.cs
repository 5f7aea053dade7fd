using System.Text.Json.Nodes;
using R1Sharp.Templates;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests;

/// Chat templates of the real DeepSeek-V3/R1, Qwen2.5, Qwen3 and Llama-3.1 tokenizer configs (plus two
/// templates written to exercise more of Jinja) against Jinja2 configured as transformers configures
/// it (Fixtures/templates/make-goldens.py).
public class ChatTemplateTests
{
    private static readonly JsonObject Spec = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "templates", "cases.json")))!.AsObject();
    private static readonly JsonObject Goldens = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "templates", "goldens.json")))!.AsObject();

    /// DeepSeek-R1's template: V3's with earlier reasoning dropped and `<think>\n` opened by the
    /// generation prompt (the derivation make-goldens.py applies).
    public static string R1Template(string v3)
    {
        const string oldTurn = "{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}";
        const string newTurn = "{% set content = message['content'] %}{% if '</think>' in content %}"
            + "{% set content = content.split('</think>')[-1] %}{% endif %}"
            + "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}";
        const string oldPrompt = "{{'<｜Assistant｜>'}}{% endif %}";
        Assert.Contains(oldTurn, v3);
        Assert.EndsWith(oldPrompt, v3);
        return v3.Replace(oldTurn, newTurn)[..^oldPrompt.Length] + "{{'<｜Assistant｜><think>\\n'}}{% endif %}";
    }

    public static (ChatTemplate Template, PretrainedTokenizer Tokenizer) Family(string name)
    {
        var tokenizer = ReferenceTokenizers.Get(name == "qwen3" ? "qwen3" : name);
        var source = name == "deepseek_r1" ? R1Template(ReferenceTokenizers.Get("deepseek_v3").ChatTemplate!) : tokenizer.ChatTemplate!;
        return (ChatTemplate.Parse(source), tokenizer);
    }

    [Theory]
    [InlineData("deepseek_v3")]
    [InlineData("deepseek_r1")]
    [InlineData("qwen2_5")]
    [InlineData("qwen3")]
    [InlineData("llama3_1")]
    public void RendersExactlyAsTransformers(string family)
    {
        var (template, tokenizer) = Family(family);
        var rendered = 0;
        foreach (var c in Spec["cases"]!.AsArray())
        {
            if (c!["families"] is JsonArray only && !only.Any(f => (string)f! == family)) continue;
            var text = template.Render(c["messages"]!.AsArray(), (bool)c["add_generation_prompt"]!, tokenizer, c["tools"] as JsonArray);
            Assert.Equal((string)Goldens[$"{family}/{c["name"]}"]!, text);
            rendered++;
        }
        Assert.True(rendered >= 5);
    }

    [Theory]
    [InlineData("constructs")]
    [InlineData("whitespace")]
    public void JinjaConstructsMatchJinja2(string name)
    {
        var template = ChatTemplate.Parse((string)Spec["mini_templates"]![name]!);
        var cases = Spec["cases"]!.AsArray();
        var messages = new JsonArray(cases[2]!["messages"]!.AsArray().Concat(cases[1]!["messages"]!.AsArray()).Select(m => m!.DeepClone()).ToArray());
        Assert.Equal((string)Goldens[$"mini/{name}"]!, template.Render(messages, false));
    }

    [Fact]
    public void TemplateErrorsAreClear()
    {
        Assert.Contains("the tag 'include' is not supported", Assert.Throws<R1SharpException>(() => ChatTemplate.Parse("{% include 'x' %}")).Message);
        Assert.Contains("the filter 'wordwrap' is not supported",
            Assert.Throws<R1SharpException>(() => ChatTemplate.Parse("{{ 'a' | wordwrap }}").Render(new JsonArray(), false)).Message);
        Assert.Contains("missing {% endif %}", Assert.Throws<R1SharpException>(() => ChatTemplate.Parse("{% if x %}")).Message);
        Assert.Contains("only user/assistant", Assert.Throws<R1SharpException>(() =>
            ChatTemplate.Parse("{{ raise_exception('only user/assistant roles') }}").Render(new JsonArray(), false)).Message);
        var (qwen, tokenizer) = Family("qwen2_5");
        Assert.Contains("undefined", Assert.Throws<R1SharpException>(() => qwen.Render(new JsonArray(), true, tokenizer)).Message);
    }
}
