using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using R1Sharp.Generation;

namespace R1Sharp.Server;

/// `bench serve`: the server on a loopback port, driven by C concurrent streaming clients per level;
/// aggregate tokens/s and time-to-first-token / inter-token latency percentiles.
public static class ServeBenchmark
{
    public sealed record Level(int Concurrency, int Requests, long CompletionTokens, double Seconds, double TokensPerSecond,
        double TtftP50Ms, double TtftP99Ms, double ItlP50Ms, double ItlP99Ms);

    public static async Task<List<Level>> RunAsync(TextGenerator generator, ServerOptions options, IReadOnlyList<int> concurrency, int requestsPerClient, int maxTokens, string prompt)
    {
        options.Port = 0;
        options.Host = "127.0.0.1";
        options.MaxBatch = Math.Max(options.MaxBatch, concurrency.Max());
        var app = ServerHost.Build(options, generator, "R1Sharp.Server.Bench");
        await app.StartAsync();
        try
        {
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            using var http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(30) };
            if (options.ApiKey is { } key) http.DefaultRequestHeaders.Authorization = new("Bearer", key);
            var body = new JsonObject { ["prompt"] = prompt, ["max_tokens"] = maxTokens, ["stream"] = true, ["ignore_eos"] = true, ["temperature"] = 0 }.ToJsonString();
            await Request(http, body);   // warm-up
            var levels = new List<Level>();
            foreach (var c in concurrency)
            {
                var watch = Stopwatch.StartNew();
                var results = await Task.WhenAll(Enumerable.Range(0, c).Select(async _ =>
                {
                    var mine = new List<(double Ttft, List<double> Itl, long Tokens)>();
                    for (int r = 0; r < requestsPerClient; r++) mine.Add(await Request(http, body));
                    return mine;
                }));
                var seconds = watch.Elapsed.TotalSeconds;
                var all = results.SelectMany(x => x).ToList();
                var tokens = all.Sum(x => x.Tokens);
                var ttft = all.Select(x => x.Ttft * 1000).ToList();
                var itl = all.SelectMany(x => x.Itl).Select(x => x * 1000).ToList();
                levels.Add(new Level(c, all.Count, tokens, seconds, tokens / seconds, Percentile(ttft, 50), Percentile(ttft, 99), Percentile(itl, 50), Percentile(itl, 99)));
            }
            return levels;
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// One streamed completion: seconds to the first text, gaps between later chunks, completion tokens.
    private static async Task<(double Ttft, List<double> Itl, long Tokens)> Request(HttpClient http, string body)
    {
        var watch = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode) throw new R1SharpException($"bench serve: the server answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        double? first = null;
        var last = 0.0;
        var gaps = new List<double>();
        long tokens = 0;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]") continue;
            var chunk = JsonNode.Parse(line[6..])!;
            if (chunk["usage"] is JsonObject usage) tokens = (long)usage["completion_tokens"]!;
            if (chunk["choices"] is not JsonArray { Count: > 0 } choices || ((string?)choices[0]!["text"] ?? "").Length == 0) continue;
            var now = watch.Elapsed.TotalSeconds;
            if (first is null) first = now;
            else gaps.Add(now - last);
            last = now;
        }
        return (first ?? watch.Elapsed.TotalSeconds, gaps, tokens);
    }

    private static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.Order().ToList();
        var rank = p / 100 * (sorted.Count - 1);
        var low = (int)Math.Floor(rank);
        var high = Math.Min(low + 1, sorted.Count - 1);
        return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
    }
}
