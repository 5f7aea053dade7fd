using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace R1Sharp.Server.Tests;

/// `r1sharp serve` as a process: options validated at start, SIGTERM drains and exits 0; queue timeouts.
public class ShutdownTests
{
    private static StringContent Body(string json) => TestServer.Json(json);

    private static Process Serve(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"));
        start.ArgumentList.Add("serve");
        foreach (var a in args) start.ArgumentList.Add(a);
        return Process.Start(start)!;
    }

    [Fact]
    public async Task SigtermFinishesOrCancelsRunningRequestsAndExitsZero()
    {
        var model = ScriptedModel.Create();
        using var server = Serve(model, "--port", "0", "--max-context", "65536", "--max-batch", "2", "--shutdown-timeout", "1");
        var line = await server.StandardError.ReadLineAsync();
        var address = Regex.Match(line ?? "", @"http://[\d.]+:\d+").Value;
        Assert.False(string.IsNullOrEmpty(address), $"no address in: {line}");
        using var http = new HttpClient { BaseAddress = new Uri(address) };
        using var endless = await http.SendAsync(TestServer.Endless(), HttpCompletionOption.ResponseHeadersRead);
        var reading = endless.Content.ReadAsStringAsync();

        var watch = Stopwatch.StartNew();
        Process.Start("kill", ["-TERM", server.Id.ToString()])!.WaitForExit();
        var body = await reading;
        Assert.True(server.WaitForExit(15_000), "the server did not exit");
        Assert.Equal(0, server.ExitCode);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"shutdown took {watch.Elapsed}");
        Assert.Contains("\"finish_reason\":\"abort\"", body);   // cut at the deadline, but the stream was closed properly
        Assert.EndsWith("data: [DONE]\n\n", body);
    }

    [Fact]
    public void BadOptionsFailAtStart()
    {
        using var noModel = Serve(Path.Combine(Path.GetTempPath(), "no-such-model"), "--port", "0");
        Assert.True(noModel.WaitForExit(30_000));
        Assert.Equal(2, noModel.ExitCode);
        Assert.Contains("model directory not found", noModel.StandardError.ReadToEnd());
        using var badBatch = Serve(ScriptedModel.Create(), "--max-batch", "0");
        Assert.True(badBatch.WaitForExit(30_000));
        Assert.Equal(2, badBatch.ExitCode);
        Assert.Contains("max batch 0 is not in 1..1024", badBatch.StandardError.ReadToEnd());
        using var hugeCache = Serve(ScriptedModel.Create(), "--port", "0", "--max-batch", "1024", "--max-context", "65536");
        Assert.True(hugeCache.WaitForExit(60_000));
        Assert.Equal(2, hugeCache.ExitCode);
        var error = hugeCache.StandardError.ReadToEnd();
        Assert.Contains("a KV cache of 1024 rows × 65536 tokens needs", error);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public async Task RequestsTimeOutInTheQueue()
    {
        await using var server = new TestServer(o => { o.MaxBatch = 1; o.MaxContext = 65536; o.QueueTimeoutSeconds = 0.3; });
        using var blocker = await server.Http.SendAsync(TestServer.Endless(), HttpCompletionOption.ResponseHeadersRead);
        var waited = await server.Http.PostAsync("/v1/completions", Body("""{"prompt":"q","max_tokens":3}"""));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, waited.StatusCode);
        var error = JsonNode.Parse(await waited.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("queue_timeout", (string?)error["code"]);
        Assert.Contains("queue timeout", (string?)error["message"]);
    }
}
