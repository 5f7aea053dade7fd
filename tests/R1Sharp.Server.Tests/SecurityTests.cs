using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace R1Sharp.Server.Tests;

/// The server as an attacker sees it: the API key cannot be dodged by spelling a path differently,
/// browsers on other sites cannot drive it, and hostile requests get 4xx in OpenAI's shape.
public class SecurityTests
{
    private const string Chat = """{"messages":[{"role":"user","content":"hi"}],"max_tokens":3}""";

    private static async Task<JsonNode> Error(HttpResponseMessage response) => JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;

    [Fact]
    public async Task NoSpellingOfAPathEscapesTheApiKey()
    {
        await using var server = new TestServer();
        using var anonymous = new HttpClient { BaseAddress = server.BaseAddress };
        foreach (var path in new[] { "/v1/models", "/V1/models", "/V1/MODELS", "/v1/Models/scripted", "//v1/models", "/v1%2Fmodels", "/%761/models", "/v1/models/", "/v1/./models" })
        {
            var response = await anonymous.GetAsync(new Uri(server.BaseAddress.GetLeftPart(UriPartial.Authority) + path));
            Assert.True(response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.NotFound, $"GET {path}: {(int)response.StatusCode}");
        }
        foreach (var path in new[] { "/v1/chat/completions", "/V1/chat/completions", "/V1/CHAT/COMPLETIONS", "/v1/Completions" })
        {
            var response = await anonymous.PostAsync(path, TestServer.Json(Chat));
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("invalid_api_key", (string?)(await Error(response))["code"]);
        }
        // The same spellings with the key reach the endpoint: routing is case-insensitive, and so is the check.
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/V1/MODELS")).StatusCode);
        anonymous.DefaultRequestHeaders.Authorization = new("Bearer", "sk-tesT");
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/v1/models")).StatusCode);
    }

    private static async Task<(Process Process, HttpClient Http)> ServeProcess(Dictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var (k, v) in environment) start.Environment[k] = v;
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"));
        start.ArgumentList.Add("serve");
        start.ArgumentList.Add(ScriptedModel.Create(maxPositions: 512));
        foreach (var a in args) start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        var line = await process.StandardError.ReadLineAsync();
        var address = Regex.Match(line ?? "", @"http://[\d.]+:\d+").Value;
        Assert.False(string.IsNullOrEmpty(address), $"no address in: {line}");
        return (process, new HttpClient { BaseAddress = new Uri(address) });
    }

    [Fact]
    public async Task TheKeyCanComeFromAFileOrTheEnvironmentAndStaysOutOfTheCommandLine()
    {
        var keyFile = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"));
        File.WriteAllText(keyFile, "sk-from-file\n");
        foreach (var (environment, args, key) in new[]
        {
            (new Dictionary<string, string>(), new[] { "--port", "0", "--api-key-file", keyFile }, "sk-from-file"),
            (new Dictionary<string, string> { ["R1SHARP__APIKEY"] = "sk-from-env" }, new[] { "--port", "0" }, "sk-from-env"),
        })
        {
            var (process, http) = await ServeProcess(environment, args);
            using (process)
            using (http)
            {
                Assert.DoesNotContain(key, File.ReadAllText($"/proc/{process.Id}/cmdline"));
                Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/v1/models")).StatusCode);
                http.DefaultRequestHeaders.Authorization = new("Bearer", key);
                Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/v1/models")).StatusCode);
                process.Kill();
                process.WaitForExit();
            }
        }
    }

    [Fact]
    public async Task TemplateVariablesTheServerSetsCannotBeOverridden()
    {
        await using var server = new TestServer();
        foreach (var key in new[] { "messages", "bos_token", "add_generation_prompt", "tools", "namespace", "raise_exception" })
        {
            var body = new JsonObject
            {
                ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }),
                ["chat_template_kwargs"] = new JsonObject { [key] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "other" }) },
            }.ToJsonString();
            var response = await server.Http.PostAsync("/v1/chat/completions", TestServer.Json(body));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var error = await Error(response);
            Assert.Equal("chat_template_kwargs", (string?)error["param"]);
            Assert.Contains($"'{key}'", (string?)error["message"]);
        }
        var allowed = await server.Http.PostAsync("/v1/chat/completions", TestServer.Json("""{"messages":[{"role":"user","content":"hi"}],"chat_template_kwargs":{"enable_thinking":true}}"""));
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }

    [Fact]
    public async Task BrowsersOnOtherSitesCannotDriveTheServer()
    {
        await using var server = new TestServer();
        var plain = await server.Http.PostAsync("/v1/chat/completions", new StringContent(Chat, Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, plain.StatusCode);
        Assert.Equal("unsupported_media_type", (string?)(await Error(plain))["code"]);
        var none = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"prompt":"q"}""")) };
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await server.Http.SendAsync(none)).StatusCode);

        var foreign = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = TestServer.Json(Chat) };
        foreign.Headers.Add("Origin", "https://evil.example");
        var refused = await server.Http.SendAsync(foreign);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("origin_not_allowed", (string?)(await Error(refused))["code"]);
        Assert.False(refused.Headers.Contains("Access-Control-Allow-Origin"));

        var same = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = TestServer.Json(Chat) };
        same.Headers.Add("Origin", $"http://{server.BaseAddress.Authority}");
        Assert.Equal(HttpStatusCode.OK, (await server.Http.SendAsync(same)).StatusCode);

        // DNS rebinding: a page at evil.example whose name now points here still sends its own Host.
        var rebound = new HttpRequestMessage(HttpMethod.Get, "/health");
        rebound.Headers.Host = "evil.example:" + server.BaseAddress.Port;
        var wrongHost = await server.Http.SendAsync(rebound);
        Assert.Equal(HttpStatusCode.BadRequest, wrongHost.StatusCode);
        Assert.Equal("host_not_allowed", (string?)(await Error(wrongHost))["code"]);
        var local = new HttpRequestMessage(HttpMethod.Get, "/health");
        local.Headers.Host = "localhost:" + server.BaseAddress.Port;
        Assert.Equal(HttpStatusCode.OK, (await server.Http.SendAsync(local)).StatusCode);
    }

    [Fact]
    public async Task AllowedOriginsGetCors()
    {
        await using var server = new TestServer(o => o.AllowedOrigins = ["http://app.example:3000"]);
        var preflight = new HttpRequestMessage(HttpMethod.Options, "/v1/chat/completions");
        preflight.Headers.Add("Origin", "http://app.example:3000");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization,content-type");
        var answer = await server.Http.SendAsync(preflight);
        Assert.True(answer.IsSuccessStatusCode, $"{answer.StatusCode}");
        Assert.Equal("http://app.example:3000", answer.Headers.GetValues("Access-Control-Allow-Origin").Single());

        var call = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = TestServer.Json(Chat) };
        call.Headers.Add("Origin", "http://app.example:3000");
        var response = await server.Http.SendAsync(call);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("http://app.example:3000", response.Headers.GetValues("Access-Control-Allow-Origin").Single());

        var other = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = TestServer.Json(Chat) };
        other.Headers.Add("Origin", "http://other.example");
        Assert.Equal(HttpStatusCode.Forbidden, (await server.Http.SendAsync(other)).StatusCode);
    }

    [Fact]
    public async Task OversizedAndMalformedBodiesAreRefusedCheaply()
    {
        await using var server = new TestServer(o => { o.MaxBodyBytes = 64 << 10; o.MaxContext = 4096; });
        var huge = await server.Http.PostAsync("/v1/completions", TestServer.Json($$"""{"prompt":"{{new string('a', 100_000)}}"}"""));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, huge.StatusCode);
        Assert.Equal("request_too_large", (string?)(await Error(huge))["code"]);

        // A prompt that cannot fit is refused from its length, before it is tokenised.
        var watch = Stopwatch.StartNew();
        var tooLong = await server.Http.PostAsync("/v1/completions", TestServer.Json($$"""{"prompt":"{{new string('a', 60_000)}}"}"""));
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        var error = await Error(tooLong);
        Assert.Equal("context_length_exceeded", (string?)error["code"]);
        Assert.Contains("at least", (string?)error["message"]);

        var invalidUtf8 = new ByteArrayContent([.. Encoding.UTF8.GetBytes("{\"prompt\":\""), 0xC3, 0x28, .. Encoding.UTF8.GetBytes("\"}")]);
        invalidUtf8.Headers.ContentType = new("application/json");
        var badBytes = await server.Http.PostAsync("/v1/completions", invalidUtf8);
        Assert.Equal(HttpStatusCode.BadRequest, badBytes.StatusCode);

        var loneSurrogate = await server.Http.PostAsync("/v1/chat/completions", TestServer.Json("""{"messages":[{"role":"user","content":"a\ud800b"}]}"""));
        Assert.Equal(HttpStatusCode.BadRequest, loneSurrogate.StatusCode);
        Assert.Equal("messages[0].content", (string?)(await Error(loneSurrogate))["param"]);
    }

    [Fact]
    public async Task AHostileChatTemplateFailsTheRequestNotTheServer()
    {
        var dir = ScriptedModel.Create(maxPositions: 512);
        var configFile = Path.Combine(dir, "tokenizer_config.json");
        var config = JsonNode.Parse(File.ReadAllText(configFile))!.AsObject();
        config["chat_template"] = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}";
        File.WriteAllText(configFile, config.ToJsonString());
        await using var server = new TestServer(o => { o.ModelDir = dir; o.MaxContext = 512; });
        for (int i = 0; i < 3; i++)
        {
            var response = await server.Http.PostAsync("/v1/chat/completions", TestServer.Json(Chat));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("macro calls nest deeper than", (string?)(await Error(response))["message"]);
        }
        var plain = await server.Http.PostAsync("/v1/completions", TestServer.Json("""{"prompt":"q","max_tokens":2}"""));
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
    }

    [Fact]
    public async Task MoreChoicesThanTheServerCanHoldIsABadRequest()
    {
        await using var server = new TestServer(o => { o.MaxBatch = 2; o.MaxQueue = 3; });
        var response = await server.Http.PostAsync("/v1/completions", TestServer.Json("""{"prompt":"q","max_tokens":2,"n":6}"""));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = await Error(response);
        Assert.Equal("n", (string?)error["param"]);
        Assert.Contains("at most 5", (string?)error["message"]);
        Assert.Equal(HttpStatusCode.OK, (await server.Http.PostAsync("/v1/completions", TestServer.Json("""{"prompt":"q","max_tokens":2,"n":5}"""))).StatusCode);
    }
}
