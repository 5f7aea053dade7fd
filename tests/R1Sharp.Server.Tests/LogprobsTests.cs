using System.ClientModel.Primitives;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using R1Sharp.Tokenization;
using static TorchSharp.torch;

namespace R1Sharp.Server.Tests;

/// `logprobs` in OpenAI's shapes, checked against a float64 log-softmax of the model's own logits.
public class LogprobsTests
{
    /// A random Llama model with the byte tokenizer: its distributions are spread, unlike the scripted model's.
    private static readonly Lazy<string> RandomModel = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), "r1sharp-server-tests", Guid.NewGuid().ToString("N"));
        var config = ModelConfig.Parse(new JsonObject
        {
            ["model_type"] = "llama", ["vocab_size"] = ByteTokenizer.VocabSize, ["hidden_size"] = 32, ["intermediate_size"] = 64,
            ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 256,
            ["bos_token_id"] = ByteTokenizer.Bos, ["eos_token_id"] = ByteTokenizer.Eos,
        }.ToJsonString());
        using var model = ModelIO.Create(config);
        ModelIO.Initialize(model, seed: 5, std: 0.3);
        ModelIO.Save(model, dir);
        ByteTokenizer.Instance.Save(dir);
        return dir;
    });

    /// log-softmax in float64 of the logits after `context`, from a forward of its own (no cache, no sampler).
    private static double[] Reference(long[] context)
    {
        using var scope = NewDisposeScope();
        using var model = ModelIO.Load(RandomModel.Value);
        using var noGrad = no_grad();
        var logits = model.Forward(tensor(context).view(1, -1))[0, -1].to_type(ScalarType.Float64);
        return logits.log_softmax(0).data<double>().ToArray();
    }

    [Fact]
    public async Task CompletionLogprobsAreTheModelsLogSoftmaxAfterEachPrefix()
    {
        await using var server = new TestServer(o => o.ModelDir = RandomModel.Value);
        long[] prompt = [ByteTokenizer.Bos, ByteTokenizer.ByteOffset + 'a', ByteTokenizer.ByteOffset + 'b'];
        var body = $$"""{"prompt": [{{string.Join(",", prompt)}}], "max_tokens": 4, "temperature": 0.8, "seed": 3, "logprobs": 3, "ignore_eos": true, "return_tokens_as_token_ids": true}""";
        var json = JsonNode.Parse(await (await server.Http.PostAsync("/v1/completions", TestServer.Json(body))).Content.ReadAsStringAsync())!;
        var choice = json["choices"]![0]!;
        var logprobs = choice["logprobs"]!;
        static long Id(string name) => long.Parse(name["token_id:".Length..]);
        var ids = logprobs["tokens"]!.AsArray().Select(t => Id((string)t!)).ToList();
        Assert.Equal(4, ids.Count);
        Assert.Equal((string)choice["text"]!, ByteTokenizer.Instance.Decode(ids));
        var offsets = logprobs["text_offset"]!.AsArray().Select(o => (int)o!).ToList();
        Assert.Equal(Enumerable.Range(0, 4).Select(t => ids.Take(t).Sum(id => ByteTokenizer.Instance.Decode([id]).Length)), offsets);   // each token's own text, as vLLM counts

        var context = prompt.ToList();
        for (int t = 0; t < 4; t++)
        {
            var reference = Reference([.. context]);
            Assert.Equal(reference[ids[t]], (double)logprobs["token_logprobs"]![t]!, 4);
            // The three most likely tokens of the reference with their values, and the sampled one.
            var top = logprobs["top_logprobs"]![t]!.AsObject().ToDictionary(p => Id(p.Key), p => (double)p.Value!);
            var expected = Enumerable.Range(0, reference.Length).OrderByDescending(i => reference[i]).Take(3).Select(i => (long)i).Append(ids[t]).Distinct().ToList();
            Assert.Equal(expected.Order(), top.Keys.Order());
            foreach (var i in expected) Assert.Equal(reference[i], top[i], 4);
            context.Add(ids[t]);
        }
    }

    [Fact]
    public async Task ChatLogprobsReachTheOpenAIClientStreamedOrNot()
    {
        await using var server = new TestServer(o => o.ModelDir = RandomModel.Value);
        var chat = server.OpenAI().GetChatClient("scripted");
        var options = new ChatCompletionOptions { IncludeLogProbabilities = true, TopLogProbabilityCount = 2, Temperature = 0, MaxOutputTokenCount = 6 };
        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("hi")], options);
        var entries = completion.ContentTokenLogProbabilities;
        Assert.Equal(completion.Usage.OutputTokenCount, entries.Count);
        Assert.All(entries, e =>
        {
            Assert.Equal(2, e.TopLogProbabilities.Count);
            Assert.True(e.TopLogProbabilities[0].LogProbability >= e.TopLogProbabilities[1].LogProbability);
            Assert.Equal(e.TopLogProbabilities[0].LogProbability, e.LogProbability, 5);          // greedy: the sampled token is the most likely
            Assert.Equal(System.Text.Encoding.UTF8.GetBytes(e.Token), e.Utf8Bytes!.Value.ToArray());
        });

        var streamed = new List<ChatTokenLogProbabilityDetails>();
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("hi")], options))
            streamed.AddRange(update.ContentTokenLogProbabilities);
        Assert.Equal(entries.Select(e => (e.Token, Math.Round(e.LogProbability, 4))), streamed.Select(e => (e.Token, Math.Round(e.LogProbability, 4))));

        // Without logprobs asked, none come back.
        var plain = JsonNode.Parse(ModelReaderWriter.Write((await chat.CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { MaxOutputTokenCount = 3 })).Value).ToString())!;
        Assert.Null(plain["choices"]![0]!["logprobs"]);
    }

    [Theory]
    [InlineData("/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":21}""", "top_logprobs")]
    [InlineData("/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}],"top_logprobs":2}""", "top_logprobs")]
    [InlineData("/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}],"logprobs":"yes"}""", "logprobs")]
    [InlineData("/v1/completions", """{"prompt":"hi","logprobs":21}""", "logprobs")]
    [InlineData("/v1/completions", """{"prompt":"hi","logprobs":true}""", "logprobs")]
    public async Task BadLogprobsRequestsAre400s(string path, string body, string param)
    {
        await using var server = new TestServer();
        var response = await server.Http.PostAsync(path, TestServer.Json(body));
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(param, (string?)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["param"]);
    }
}
