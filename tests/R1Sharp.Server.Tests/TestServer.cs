using System.ClientModel;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using R1Sharp.Generation;
using R1Sharp.Server.Scheduling;

namespace R1Sharp.Server.Tests;

/// An in-process server on a free loopback port around a scripted model.
sealed class TestServer : IAsyncDisposable
{
    private static readonly Lazy<string> SharedModel = new(() => ScriptedModel.Create());
    private readonly TextGenerator _generator;

    public TestServer(Action<ServerOptions>? configure = null)
    {
        Options = new ServerOptions { ModelDir = SharedModel.Value, Port = 0, ApiKey = "sk-test", ModelName = "scripted", MaxBatch = 16, MaxQueue = 64, MaxContext = 4096 };
        configure?.Invoke(Options);
        _generator = TextGenerator.Load(Options.ModelDir);
        App = ServerHost.Build(Options, _generator, meterName: "R1Sharp.Server.Test." + Guid.NewGuid().ToString("N"));
        App.StartAsync().GetAwaiter().GetResult();
        BaseAddress = new Uri(App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        Http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        Http.DefaultRequestHeaders.Authorization = new("Bearer", Options.ApiKey);
    }

    public ServerOptions Options { get; }
    public WebApplication App { get; }
    public Uri BaseAddress { get; }
    public HttpClient Http { get; }
    public BatchScheduler Scheduler => App.Services.GetRequiredService<BatchScheduler>();

    public static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

    /// A streamed completion that would run for a long time: the scripted model alternates "r" and "q" forever.
    public static HttpRequestMessage Endless(int maxTokens = 60000) =>
        new(HttpMethod.Post, "/v1/completions") { Content = Json($$"""{"prompt":"q","max_tokens":{{maxTokens}},"stream":true}""") };

    public OpenAIClient OpenAI() => new(new ApiKeyCredential(Options.ApiKey!), new OpenAIClientOptions { Endpoint = new Uri(BaseAddress, "/v1") });

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        _generator.Dispose();
    }
}
