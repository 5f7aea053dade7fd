using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OpenAI.Chat;

namespace R1Sharp.Server.Tests;

/// The server with the official OpenAI .NET client as its client, and raw HTTP for the error cases.
public class ServerTests
{
    private static StringContent Body(string json) => TestServer.Json(json);
    private static HttpRequestMessage Endless() => TestServer.Endless();

    private static string Raw(object model) => ModelReaderWriter.Write(model).ToString();

    [Fact]
    public async Task ChatCompletionWithTheOpenAIClient()
    {
        await using var server = new TestServer();
        var chat = server.OpenAI().GetChatClient("scripted");
        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("Is 1001 prime?")]);
        Assert.Equal(ScriptedModel.Content, completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(ScriptedModel.CompletionTokens, completion.Usage.OutputTokenCount);
        var json = JsonNode.Parse(Raw(completion))!;
        Assert.Equal(ScriptedModel.Reasoning, (string?)json["choices"]![0]!["message"]!["reasoning_content"]);
        Assert.Equal(ScriptedModel.Reasoning, (string?)json["choices"]![0]!["message"]!["reasoning"]);

        var models = await server.OpenAI().GetOpenAIModelClient().GetModelsAsync();
        Assert.Equal(["scripted"], models.Value.Select(m => m.Id));
        Assert.Equal("scripted", (await server.OpenAI().GetOpenAIModelClient().GetModelAsync("scripted")).Value.Id);
        var missing = await server.Http.GetAsync("/v1/models/gpt-4o");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("model_not_found", (string?)JsonNode.Parse(await missing.Content.ReadAsStringAsync())!["error"]!["code"]);
    }

    [Fact]
    public async Task StreamedReasoningComesBeforeTheAnswer()
    {
        await using var server = new TestServer();
        var chat = server.OpenAI().GetChatClient("scripted");
        var order = new List<string>();
        var content = new StringBuilder();
        var reasoning = new StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("hi")]))
        {
            foreach (var part in update.ContentUpdate) { content.Append(part.Text); if (part.Text.Length > 0) order.Add("content"); }
            var delta = JsonNode.Parse(Raw(update))!["choices"]!.AsArray().FirstOrDefault()?["delta"];
            if ((string?)delta?["reasoning_content"] is { } r) { reasoning.Append(r); order.Add("reasoning"); }
            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }
        Assert.Equal(ScriptedModel.Reasoning, reasoning.ToString());
        Assert.Equal(ScriptedModel.Content, content.ToString());
        Assert.Equal(order.OrderBy(o => o == "content").ToList(), order);   // every reasoning delta precedes every content delta
        Assert.Equal(ScriptedModel.CompletionTokens, usage!.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Stop, finish);

        var raw = await (await server.Http.PostAsync("/v1/chat/completions", Body("""{"messages":[{"role":"user","content":"hi"}],"stream":true}"""))).Content.ReadAsStringAsync();
        Assert.EndsWith("data: [DONE]\n\n", raw);
        Assert.Equal("text/event-stream", (await server.Http.PostAsync("/v1/chat/completions", Body("""{"messages":[{"role":"user","content":"hi"}],"stream":true}"""))).Content.Headers.ContentType!.MediaType);
    }

    [Fact]
    public async Task ThirtyTwoConcurrentStreamsAllComplete()
    {
        await using var server = new TestServer(o => o.MaxBatch = 8);
        var chat = server.OpenAI().GetChatClient("scripted");
        var results = await Task.WhenAll(Enumerable.Range(0, 32).Select(async i =>
        {
            var text = new StringBuilder();
            ChatTokenUsage? usage = null;
            await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage($"request {i}")]))
            {
                foreach (var part in update.ContentUpdate) text.Append(part.Text);
                usage ??= update.Usage;
            }
            return (Text: text.ToString(), Tokens: usage?.OutputTokenCount);
        }));
        Assert.All(results, r => Assert.Equal((ScriptedModel.Content, (int?)ScriptedModel.CompletionTokens), r));
        var metrics = await server.Http.GetStringAsync("/metrics");
        Assert.Contains("r1sharp_time_to_first_token_seconds_bucket", metrics);
        Assert.Contains("r1sharp_inter_token_latency_seconds_bucket", metrics);
        Assert.Matches("r1sharp_generation_tokens_total\\{[^}]*\\} 160", metrics);
        Assert.Matches("r1sharp_requests_total\\{[^}]*endpoint=\"/v1/chat/completions\"[^}]*status=\"200\"[^}]*\\} 32", metrics);
        Assert.Contains("r1sharp_num_requests_waiting", metrics);
        Assert.Contains("r1sharp_kv_cache_usage_perc", metrics);
        Assert.Contains("r1sharp_process_resident_bytes", metrics);
        Assert.Matches("r1sharp_batch_size_bucket\\{[^}]*le=\"8\"\\}", metrics);
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}""", "invalid_json", null)]
    [InlineData("""[1, 2]""", "invalid_json", null)]
    [InlineData("""{"model":"scripted"}""", "missing_required_parameter", "messages")]
    [InlineData("""{"messages":"hi"}""", "invalid_type", "messages")]
    [InlineData("""{"messages":[]}""", "invalid_value", "messages")]
    [InlineData("""{"messages":[{"role":"wizard","content":"hi"}]}""", "invalid_value", "messages[0].role")]
    [InlineData("""{"messages":[{"role":"user","content":7}]}""", "invalid_type", "messages[0].content")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"temperature":2.5}""", "invalid_value", "temperature")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"temperature":"hot"}""", "invalid_type", "temperature")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"top_p":0}""", "invalid_value", "top_p")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"max_tokens":0}""", "invalid_value", "max_tokens")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"n":0}""", "invalid_value", "n")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]}""", "invalid_value", "stop")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"presence_penalty":3}""", "invalid_value", "presence_penalty")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"stream":"yes"}""", "invalid_type", "stream")]
    [InlineData("""{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}""", "model_not_found", "model")]
    public async Task BadRequestsGet400InOpenAIsShape(string body, string code, string? param)
    {
        await using var server = new TestServer();
        var response = await server.Http.PostAsync("/v1/chat/completions", Body(body));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal(code, (string?)error["code"]);
        Assert.Equal(param, (string?)error["param"]);
        Assert.Equal("invalid_request_error", (string?)error["type"]);
        Assert.False(string.IsNullOrEmpty((string?)error["message"]));
        Assert.DoesNotContain("   at ", (string)error["message"]!);
    }

    [Fact]
    public async Task ContextKeysAndUnknownFields()
    {
        await using var server = new TestServer(o => o.MaxContext = 32);
        var tooLong = await server.Http.PostAsync("/v1/chat/completions", Body($$"""{"messages":[{"role":"user","content":"{{new string('a', 40)}}"}]}"""));
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        Assert.Equal("context_length_exceeded", (string?)JsonNode.Parse(await tooLong.Content.ReadAsStringAsync())!["error"]!["code"]);

        var unknown = await server.Http.PostAsync("/v1/chat/completions", Body("""{"messages":[{"role":"user","content":"hi"}],"some_future_field":{"x":1}}"""));
        Assert.Equal(HttpStatusCode.OK, unknown.StatusCode);

        using var anonymous = new HttpClient { BaseAddress = server.BaseAddress };
        var missing = await anonymous.PostAsync("/v1/chat/completions", Body("""{"messages":[{"role":"user","content":"hi"}]}"""));
        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        anonymous.DefaultRequestHeaders.Authorization = new("Bearer", "sk-wrong");
        var wrong = await anonymous.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal("invalid_api_key", (string?)JsonNode.Parse(await wrong.Content.ReadAsStringAsync())!["error"]!["code"]);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/ready")).StatusCode);
    }

    [Fact]
    public async Task StopStringsChoicesAndCompletions()
    {
        await using var server = new TestServer();
        var two = JsonNode.Parse(await (await server.Http.PostAsync("/v1/chat/completions",
            Body("""{"messages":[{"role":"user","content":"hi"}],"n":2}"""))).Content.ReadAsStringAsync())!;
        Assert.Equal([ScriptedModel.Content, ScriptedModel.Content], two["choices"]!.AsArray().Select(c => (string?)c!["message"]!["content"]));
        Assert.Equal(2 * ScriptedModel.CompletionTokens, (int)two["usage"]!["completion_tokens"]!);
        // Stop strings apply to the raw output, reasoning included (as vLLM does): "k" is inside "</think>".
        var stoppedInTag = JsonNode.Parse(await (await server.Http.PostAsync("/v1/chat/completions",
            Body("""{"messages":[{"role":"user","content":"hi"}],"stop":"k"}"""))).Content.ReadAsStringAsync())!;
        Assert.Equal("xy</thin", (string?)stoppedInTag["choices"]![0]!["message"]!["reasoning_content"]);
        Assert.Equal("stop", (string?)stoppedInTag["choices"]![0]!["finish_reason"]);
        var stopped = JsonNode.Parse(await (await server.Http.PostAsync("/v1/completions",
            Body("""{"prompt":"q","max_tokens":50,"stop":["qr","zz"]}"""))).Content.ReadAsStringAsync())!;
        Assert.Equal("r", (string?)stopped["choices"]![0]!["text"]);
        Assert.Equal("stop", (string?)stopped["choices"]![0]!["finish_reason"]);
        var completion = JsonNode.Parse(await (await server.Http.PostAsync("/v1/completions",
            Body("""{"model":"scripted","prompt":"q","max_tokens":6}"""))).Content.ReadAsStringAsync())!;
        Assert.Equal("rqrqrq", (string?)completion["choices"]![0]!["text"]);
        Assert.Equal("length", (string?)completion["choices"]![0]!["finish_reason"]);
        Assert.Equal(6, (int)completion["usage"]!["completion_tokens"]!);
    }

    [Fact]
    public async Task DisconnectingFreesTheSlot()
    {
        await using var server = new TestServer(o => { o.MaxBatch = 1; o.MaxContext = 65536; });
        using var response = await server.Http.SendAsync(Endless(), HttpCompletionOption.ResponseHeadersRead);
        var stream = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[256];
        await stream.ReadAtLeastAsync(buffer, 1);
        Assert.Equal(1, server.Scheduler.Running);
        response.Dispose();   // the client goes away mid-stream
        var watch = Stopwatch.StartNew();
        while (server.Scheduler.Running > 0 && watch.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(10);   // a bound on liveness, not a speed claim
        Assert.Equal(0, server.Scheduler.Running);
        var metrics = await server.Http.GetStringAsync("/metrics");
        Assert.Matches("r1sharp_request_success_total\\{[^}]*finished_reason=\"abort\"[^}]*\\} 1", metrics);
    }

    [Fact]
    public async Task AFullQueueAnswers429()
    {
        await using var server = new TestServer(o => { o.MaxBatch = 1; o.MaxQueue = 1; o.MaxContext = 65536; });
        using var first = await server.Http.SendAsync(Endless(), HttpCompletionOption.ResponseHeadersRead);
        var watch = Stopwatch.StartNew();
        while (server.Scheduler.Running == 0 && watch.Elapsed < TimeSpan.FromSeconds(5)) await Task.Delay(10);
        var second = server.Http.SendAsync(Endless(), HttpCompletionOption.ResponseHeadersRead);
        while (server.App.Services.GetService(typeof(ServerMetrics)) is ServerMetrics m && m.Waiting == 0 && watch.Elapsed < TimeSpan.FromSeconds(5)) await Task.Delay(10);
        var third = await server.Http.PostAsync("/v1/completions", Body("""{"prompt":"q","max_tokens":5}"""));
        Assert.Equal((HttpStatusCode)429, third.StatusCode);
        var error = JsonNode.Parse(await third.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("queue_full", (string?)error["code"]);
        Assert.Equal("rate_limit_error", (string?)error["type"]);
        first.Dispose();
        (await second).Dispose();
    }

    [Fact]
    public async Task HigherPriorityIsAdmittedFirst()
    {
        await using var server = new TestServer(o => { o.MaxBatch = 1; o.MaxContext = 65536; });
        var metrics = (ServerMetrics)server.App.Services.GetService(typeof(ServerMetrics))!;
        using var blocker = await server.Http.SendAsync(Endless(), HttpCompletionOption.ResponseHeadersRead);
        var finished = new List<string>();
        async Task Run(string name, int priority)
        {
            var response = await server.Http.PostAsync("/v1/completions", Body($$"""{"prompt":"q","max_tokens":3,"priority":{{priority}}}"""));
            lock (finished) finished.Add(name + (response.IsSuccessStatusCode ? "" : " " + response.StatusCode + response.Content.ReadAsStringAsync().Result));
        }
        async Task UntilWaiting(int count)   // generous: the suites run side by side on two cores
        {
            var watch = Stopwatch.StartNew();
            while (metrics.Waiting < count && watch.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(5);
            Assert.True(metrics.Waiting >= count, $"{metrics.Waiting} requests waiting, expected {count}");
        }
        var low = Run("low", 5);
        await UntilWaiting(1);
        var high = Run("high", -5);
        await UntilWaiting(2);
        Assert.Equal(1, server.Scheduler.Running);
        blocker.Dispose();
        await Task.WhenAll(low, high);
        Assert.Equal(["high", "low"], finished);
    }
}

public class DynamicBatchingTests
{
    [Fact]
    public async Task ChunkedPrefillGivesTheSameAnswers()
    {
        await using var server = new TestServer(o => o.MaxPrefillTokens = 2);   // every prompt takes several steps
        var chat = server.OpenAI().GetChatClient("scripted");
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(async i =>
        {
            ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage($"a somewhat longer question number {i}")]);
            return (completion.Content[0].Text, completion.Usage.OutputTokenCount, completion.Usage.InputTokenCount);
        }));
        Assert.All(results, r => Assert.Equal((ScriptedModel.Content, ScriptedModel.CompletionTokens), (r.Text, r.OutputTokenCount)));
        var metrics = await server.Http.GetStringAsync("/metrics");
        Assert.Matches($"r1sharp_prompt_tokens_total\\{{[^}}]*\\}} {results.Sum(r => r.InputTokenCount)}", metrics);
    }

    [Fact]
    public async Task AnIdleSchedulerWaitsForAPreferredBatchUpToTheMaximumDelay()
    {
        // A generous delay: the four staggered requests below must all arrive within it on a loaded machine.
        await using var server = new TestServer(o => { o.MaxQueueDelayMs = 1500; o.PreferredBatchSizes = [4]; });
        var chat = server.OpenAI().GetChatClient("scripted");
        var watch = Stopwatch.StartNew();
        await chat.CompleteChatAsync([new UserChatMessage("alone")]);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(1450), $"a lone request started after {watch.ElapsedMilliseconds} ms");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10));

        var before = await server.Http.GetStringAsync("/metrics");
        var small = Regex.Match(before, "r1sharp_batch_size_bucket\\{[^}]*le=\"2\"\\} (\\d+)").Groups[1].Value;
        await Task.WhenAll(Enumerable.Range(0, 4).Select(async i => { await Task.Delay(i * 50); await chat.CompleteChatAsync([new UserChatMessage($"r{i}")]); }));
        var after = await server.Http.GetStringAsync("/metrics");
        Assert.Equal(small, Regex.Match(after, "r1sharp_batch_size_bucket\\{[^}]*le=\"2\"\\} (\\d+)").Groups[1].Value);   // no step ran with fewer than 4
    }
}
