using System.Text.Json.Nodes;
using R1Sharp.Tokenization;
using R1Sharp.Training.Data;

namespace R1Sharp.Tests;

/// SFT data through real chat templates: only what the assistant says is learned.
public class ChatSftTests
{
    private static JsonArray Conversation() =>
    [
        new JsonObject { ["role"] = "system", ["content"] = "You are terse." },
        new JsonObject { ["role"] = "user", ["content"] = "What is 2+2?" },
        new JsonObject { ["role"] = "assistant", ["content"] = "<think>two and two</think>It is 4." },
        new JsonObject { ["role"] = "user", ["content"] = "And 3+3?" },
        new JsonObject { ["role"] = "assistant", ["content"] = "<think>three twice</think>6" },
    ];

    /// A folder with the reference tokenizer; deepseek_r1 is V3's tokenizer with R1's template and <think> tokens.
    public static string Folder(string family)
    {
        if (family != "deepseek_r1") return TestPaths.ReferenceTokenizer(family);
        var dir = TestPaths.TempDir();
        File.Copy(Path.Combine(ReferenceTokenizers.R1Folder.Value, "tokenizer.json"), Path.Combine(dir, "tokenizer.json"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(ReferenceTokenizers.R1Folder.Value, "tokenizer_config.json")))!.AsObject();
        config["chat_template"] = ChatTemplateTests.R1Template((string)config["chat_template"]!);
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        return dir;
    }

    private static List<string> Learned(string family, JsonArray messages)
    {
        var dir = Folder(family);
        var tokenizer = PretrainedTokenizer.Load(dir);
        var encoder = DocumentEncoder.For(dir);
        return encoder.FromMessages(messages, "test").Select(d =>
        {
            Assert.Equal(d.Tokens.Length, d.LossMask.Length);
            // Learned tokens form one run per document here (each assistant turn ends its document or is followed by context).
            return string.Concat(d.Tokens.Zip(d.LossMask).Where(p => p.Second == 1).Select(p => tokenizer.Decode([p.First])));
        }).ToList();
    }

    [Fact]
    public void Qwen25LearnsBothAnswersInOneDocument()
    {
        var learned = Learned("qwen2_5", Conversation());
        Assert.Equal(["<think>two and two</think>It is 4.<|im_end|>\n<think>three twice</think>6<|im_end|>\n"], learned);
    }

    [Fact]
    public void Qwen3KeepsEachTurnsReasoningAsTheModelSawIt()
    {
        // Qwen3 drops the reasoning of turns before the last question: the first turn becomes its own document, reasoning kept.
        var learned = Learned("qwen3", Conversation());
        Assert.Equal(2, learned.Count);
        Assert.Contains("<think>\nthree twice\n</think>\n\n6<|im_end|>\n", learned);
        Assert.Contains("<think>\ntwo and two\n</think>\n\nIt is 4.<|im_end|>\n", learned);
    }

    [Fact]
    public void DeepSeekR1LearnsWhatFollowsItsOpenedThink()
    {
        // R1's prompt ends with <think>\n and its template drops reasoning: each turn is learned as the model generates it.
        var learned = Learned("deepseek_r1", Conversation());
        Assert.Equal(["two and two</think>It is 4.<｜end▁of▁sentence｜>", "three twice</think>6<｜end▁of▁sentence｜>"], learned);
    }

    [Fact]
    public void GenerationBlocksOfTheTemplateSayWhatIsLearned()
    {
        // Qwen2.5's template with the assistant's text marked as transformers' return_assistant_tokens_mask reads it:
        // the block ends before the newline after <|im_end|>, which the rendering-difference method would learn too.
        var dir = TestPaths.TempDir();
        var source = TestPaths.ReferenceTokenizer("qwen2_5");
        File.Copy(Path.Combine(source, "tokenizer.json"), Path.Combine(dir, "tokenizer.json"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "tokenizer_config.json")))!.AsObject();
        var template = (string)config["chat_template"]!;
        const string plain = "{%- if (message.role == \"user\") or";
        Assert.Contains(plain, template);
        config["chat_template"] = template.Replace(plain,
            "{%- if message.role == \"assistant\" and not message.tool_calls %}{{- '<|im_start|>assistant\\n' }}{% generation %}{{- message.content + '<|im_end|>' }}{% endgeneration %}{{- '\\n' }}{% set ignored %}{% generation %}x{% endgeneration %}{% endset %}\n    {%- elif (message.role == \"user\") or");
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());

        var tokenizer = PretrainedTokenizer.Load(dir);
        var document = Assert.Single(DocumentEncoder.For(dir).FromMessages(Conversation(), "test"));
        var learned = string.Concat(document.Tokens.Zip(document.LossMask).Where(p => p.Second == 1).Select(p => tokenizer.Decode([p.First])));
        Assert.Equal("<think>two and two</think>It is 4.<|im_end|><think>three twice</think>6<|im_end|>", learned);
        Assert.Equal(tokenizer.Encode(R1Sharp.Templates.ChatTemplate.For(tokenizer).Render(Conversation(), false, tokenizer)), document.Tokens);
    }

    [Fact]
    public void ContextTokensAreTheTemplatesOwnTokens()
    {
        // Everything (learned or not) concatenated is the template's rendering, token for token.
        var dir = Folder("qwen2_5");
        var tokenizer = PretrainedTokenizer.Load(dir);
        var document = Assert.Single(DocumentEncoder.For(dir).FromMessages(Conversation(), "test"));
        var rendered = R1Sharp.Templates.ChatTemplate.For(tokenizer).Render(Conversation(), false, tokenizer);
        Assert.Equal(tokenizer.Encode(rendered), document.Tokens);
    }

    [Fact]
    public void ATemplateThatRendersNoAssistantIsAnErrorNamingTheLine()
    {
        var dir = TestPaths.TempDir();
        File.Copy(Path.Combine(TestPaths.ReferenceTokenizer("qwen2_5"), "tokenizer.json"), Path.Combine(dir, "tokenizer.json"));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{"chat_template": "{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}{% endif %}{% endfor %}", "eos_token": "<|im_end|>"}""");
        var data = Path.Combine(dir, "chat.jsonl");
        File.WriteAllText(data, new JsonObject { ["messages"] = Conversation() }.ToJsonString() + "\n");
        var e = Assert.Throws<R1SharpException>(() => DatasetPreparer.ReadFile(data, DocumentEncoder.For(dir)).ToList());
        Assert.Contains("chat.jsonl:1: the chat template renders no assistant span for message 3", e.Message);
    }

    [Fact]
    public void PromptCompletionAndTextLinesUseTheTokenizer()
    {
        var dir = Folder("qwen2_5");
        var tokenizer = PretrainedTokenizer.Load(dir);
        var data = Path.Combine(TestPaths.TempDir(), "mixed.jsonl");
        File.WriteAllLines(data, [
            new JsonObject { ["prompt"] = "Capital of France?", ["completion"] = "Paris." }.ToJsonString(),
            new JsonObject { ["text"] = "Plain text." }.ToJsonString(),
        ]);
        var documents = DatasetPreparer.ReadFile(data, DocumentEncoder.For(dir)).ToList();
        Assert.Equal("Paris.<|im_end|>\n", tokenizer.Decode(documents[0].Tokens.Where((_, i) => documents[0].LossMask[i] == 1).ToArray()));
        Assert.Contains("<|im_start|>user\nCapital of France?<|im_end|>", tokenizer.Decode(documents[0].Tokens));
        Assert.Equal("Plain text." + tokenizer.EosToken, tokenizer.Decode(documents[1].Tokens));
        Assert.All(documents[1].LossMask, m => Assert.Equal(1, m));
    }
}
