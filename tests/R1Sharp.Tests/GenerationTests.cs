using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using R1Sharp.Generation;
using R1Sharp.Templates;
using R1Sharp.Tokenization;
using R1Sharp.Training.Data;

namespace R1Sharp.Tests;

/// Text generation: seeds, stop strings, eos from generation_config.json, streaming reasoning, IChatClient.
public class GenerationTests
{
    private static readonly Lazy<string> Folder = new(() => TinyChatModels.Create());

    private static async Task<List<GeneratedChunk>> Collect(TextGenerator generator, Prompt prompt, SamplingOptions options)
    {
        var chunks = new List<GeneratedChunk>();
        await foreach (var chunk in generator.StreamAsync(prompt, options)) chunks.Add(chunk);
        return chunks;
    }

    [Fact]
    public async Task SamplingIsReproducibleBySeed()
    {
        using var generator = TextGenerator.Load(Folder.Value);
        var prompt = generator.RenderChat([new ChatTurn("user", "2+2=")]);
        var options = new SamplingOptions { Temperature = 1.0, TopP = 0.95, TopK = 50, MinP = 0.01, RepetitionPenalty = 1.1, MaxNewTokens = 24 };
        var a = await generator.GenerateAsync(prompt, options with { Seed = 5 });
        var b = await generator.GenerateAsync(prompt, options with { Seed = 5 });
        var c = await generator.GenerateAsync(prompt, options with { Seed = 6 });
        Assert.Equal(a.Ids, b.Ids);
        Assert.Equal(a.Text, b.Text);
        Assert.NotEqual(a.Ids, c.Ids);
        Assert.Equal(24, a.Ids.Length);
        Assert.Equal("length", a.FinishReason);
        Assert.Equal(generator.Tokenizer.Decode(a.Ids), a.Text);
    }

    [Fact]
    public async Task StopStringsCutTheOutputAndAreNeverEmitted()
    {
        using var generator = TextGenerator.Load(Folder.Value);
        var prompt = generator.Plain("Once upon a time");
        var greedy = SamplingOptions.GreedyDecoding(40);
        var full = await generator.GenerateAsync(prompt, greedy);
        Assert.True(full.Text.Length > 12, full.Text);
        var stop = full.Text.Substring(6, 3);
        var chunks = await Collect(generator, prompt, greedy with { StopStrings = [stop, "never-appears"] });
        var text = string.Concat(chunks.Select(c => c.Text));
        Assert.Equal(full.Text[..full.Text.IndexOf(stop, StringComparison.Ordinal)], text);
        Assert.Equal("stop", chunks[^1].FinishReason);
    }

    [Fact]
    public async Task GenerationConfigEosIdsEndGeneration()
    {
        using var plain = TextGenerator.Load(Folder.Value);
        var full = await plain.GenerateAsync(plain.Plain("abc"), SamplingOptions.GreedyDecoding(30));
        var eos = full.Ids[4];
        var first = Array.IndexOf(full.Ids, eos);
        var dir = TinyChatModels.Create(generationConfig: new JsonObject { ["eos_token_id"] = new JsonArray(ByteTokenizer.Eos, eos), ["do_sample"] = false });
        using var generator = TextGenerator.Load(dir);
        var result = await generator.GenerateAsync(generator.Plain("abc"), generator.DefaultOptions(30));
        Assert.Equal(full.Ids[..first], result.Ids);
        Assert.Equal("stop", result.FinishReason);
    }

    [Fact]
    public void TheByteTokenizerTemplateIsTheTrainingFormat()
    {
        using var generator = TextGenerator.Load(Folder.Value);
        var prompt = generator.RenderChat([new ChatTurn("user", "What is 12+30?")]);
        Assert.Equal(Document.Prompt("What is 12+30?"), prompt.Ids);
        var turns = generator.RenderChat([new ChatTurn("user", "a"), new ChatTurn("assistant", "b"), new ChatTurn("user", "c")], addGenerationPrompt: false);
        Assert.Equal(Document.FromMessages([("user", "a"), ("assistant", "b"), ("user", "c")]).Tokens, turns.Ids);
    }

    [Fact]
    public async Task BadPromptsGiveOneClearError()
    {
        using var generator = TextGenerator.Load(TinyChatModels.Create(maxPositions: 16));
        var empty = await Assert.ThrowsAsync<R1SharpException>(() => generator.GenerateAsync(new Prompt("", [], false), SamplingOptions.GreedyDecoding(4)));
        Assert.Contains("empty", empty.Message);
        var tooLong = await Assert.ThrowsAsync<R1SharpException>(() => generator.GenerateAsync(generator.Plain(new string('x', 40)), SamplingOptions.GreedyDecoding(4)));
        Assert.Contains("context is 16", tooLong.Message);
        var near = generator.Plain(new string('x', 12));
        var nearEnd = await generator.GenerateAsync(near, SamplingOptions.GreedyDecoding(50));
        Assert.Equal(16 - near.Ids.Length, nearEnd.Ids.Length);
        Assert.Equal("length", nearEnd.FinishReason);
    }

    [Fact]
    public void StopStringMatcherHoldsPossibleStarts()
    {
        var matcher = new StopStringMatcher(["STOP", "END"]);
        Assert.Equal("ab", matcher.Add("abST"));
        Assert.Equal("", matcher.Add("O"));
        Assert.Equal("STOx ", matcher.Add("x E"));
        Assert.Equal("", matcher.Add("N"));
        Assert.Equal("", matcher.Add("D and more"));
        Assert.True(matcher.Stopped);
        var open = new StopStringMatcher(["STOP"]);
        Assert.Equal("abc", open.Add("abcST"));
        Assert.Equal("ST", open.Flush());
    }

    [Theory]
    [InlineData("<think>\nadd the units\n</think>\n\nThe answer is 42.", false, "\nadd the units\n", "The answer is 42.")]
    [InlineData("\nadd the units\n</think>\n\n42", true, "\nadd the units\n", "42")]
    [InlineData("No reasoning here </thin", false, "", "No reasoning here </thin")]
    [InlineData("<think>never closed", false, "never closed", "")]
    [InlineData("still thinking", true, "still thinking", "")]
    [InlineData("<thin", false, "", "<thin")]
    public void ReasoningParserSplitsWholeAndStreamedOutput(string output, bool opened, string reasoning, string content)
    {
        Assert.Equal((reasoning, content), ReasoningParser.Split(output, opened));
        var parser = new ReasoningParser(opened);
        string r = "", c = "";
        foreach (var ch in output)
        {
            var (dr, dc) = parser.Add(ch.ToString());
            Assert.False(dr.Contains('<') && reasoning.IndexOf('<') < 0, "a tag leaked into reasoning");
            (r, c) = (r + dr, c + dc);
        }
        var (fr, fc) = parser.Flush();
        Assert.Equal((reasoning, content), (r + fr, c + fc));
    }

    [Fact]
    public async Task ChatClientRoutesReasoningAndCountsTokens()
    {
        using var generator = TextGenerator.Load(TinyChatModels.Create(chatTemplate: ByteTokenizer.ChatTemplate + "{% if add_generation_prompt %}<think>\n{% endif %}"));
        using IChatClient client = new R1ChatClient(generator, "tiny");
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 12 };
        var response = await client.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, "hi")], options);
        var prompt = generator.RenderChat([new ChatTurn("user", "hi")]);
        var direct = await generator.GenerateAsync(prompt, generator.DefaultOptions(12) with { Temperature = 0 });
        var (reasoning, content) = ReasoningParser.Split(direct.Text, startsInReasoning: true);
        Assert.True(prompt.OpensReasoning);
        Assert.Equal(reasoning, string.Concat(response.Messages.SelectMany(m => m.Contents).OfType<TextReasoningContent>().Select(r => r.Text)));
        Assert.Equal(content, response.Text);
        Assert.Equal(prompt.Ids.Length, response.Usage!.InputTokenCount);
        Assert.Equal(direct.Ids.Length, response.Usage.OutputTokenCount);
        var streamed = 0;
        await foreach (var update in client.GetStreamingResponseAsync([new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, "hi")], options)) streamed++;
        Assert.True(streamed > 1, "the stream should arrive in several updates");
        Assert.Equal("tiny", client.GetService<ChatClientMetadata>()!.DefaultModelId);
    }
}
