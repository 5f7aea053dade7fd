using System.CommandLine;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using R1Sharp.Generation;
using R1Sharp.Server;

namespace R1Sharp.Cli.Commands;

public static class ServeCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Hugging Face model folder (weights, tokenizer files, chat template)" };
        var host = new Option<string?>("--host") { Description = "address to listen on (default 127.0.0.1)" };
        var port = new Option<int?>("--port") { Description = "port (default 8000; 0 picks a free one)" };
        var apiKey = new Option<string?>("--api-key") { Description = "require 'Authorization: Bearer KEY' on /v1/* (visible in the process list: prefer --api-key-file or R1SHARP__APIKEY)" };
        var apiKeyFile = new Option<string?>("--api-key-file") { Description = "read the API key from this file (first line)" };
        var origins = new Option<string?>("--allowed-origins") { Description = "browser origins allowed to call the API (CORS), comma-separated, or *; default none" };
        var hosts = new Option<string?>("--allowed-hosts") { Description = "Host names served, comma-separated (default: loopback names when listening on loopback, else any)" };
        var maxBody = new Option<long?>("--max-body-bytes") { Description = "largest request body; larger ones get 413 (default 8 MiB)" };
        var name = new Option<string?>("--model-name") { Description = "model id clients send (default: the folder name)" };
        var maxBatch = new Option<int?>("--max-batch") { Description = "sequences decoded together (default 16)" };
        var maxQueue = new Option<int?>("--max-queue") { Description = "requests that may wait for a slot; more get 429 (default 64)" };
        var maxContext = new Option<int?>("--max-context") { Description = "tokens per sequence, prompt + completion (default: the model's)" };
        var delay = new Option<double?>("--max-queue-delay-ms") { Description = "dynamic batching: how long an idle scheduler waits for a preferred batch size" };
        var preferred = new Option<string?>("--preferred-batch-sizes") { Description = "dynamic batching: e.g. 4,8" };
        var prefill = new Option<int?>("--max-prefill-tokens") { Description = "prompt tokens prefilled per step; longer prompts are prefilled in chunks (default 2048)" };
        var queueTimeout = new Option<double?>("--queue-timeout") { Description = "seconds a request may wait for a slot (default 60)" };
        var shutdown = new Option<double?>("--shutdown-timeout") { Description = "seconds running requests get to finish on shutdown (default 10)" };
        var weights = new Option<string?>("--weights") { Description = "weights in memory: f32, bf16, fp8 or int8" };
        var toolParser = new Option<string?>("--tool-call-parser") { Description = "how the model writes tool calls: hermes (Qwen), deepseek_v3 (V3/R1), deepseek_v31; default: from the chat template" };
        var adapter = CommandRunner.AdapterOption();
        var command = new Command("serve", "OpenAI-compatible HTTP server with continuous batching and Prometheus metrics (settings also from appsettings.json and R1SHARP__* variables).")
            { dir, host, port, apiKey, apiKeyFile, origins, hosts, maxBody, name, maxBatch, maxQueue, maxContext, delay, preferred, prefill, queueTimeout, shutdown, weights, adapter, toolParser };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var options = new ServerOptions();
            new ConfigurationBuilder().AddJsonFile(Path.Combine(Environment.CurrentDirectory, "appsettings.json"), optional: true)
                .AddEnvironmentVariables().Build().GetSection("R1Sharp").Bind(options);
            options.ModelDir = parse.GetValue(dir)!;
            if (parse.GetValue(host) is { } h) options.Host = h;
            if (parse.GetValue(port) is int p) options.Port = p;
            if (parse.GetValue(apiKey) is { } k) options.ApiKey = k;
            if (parse.GetValue(apiKeyFile) is { } kf) options.ApiKeyFile = kf;
            if (parse.GetValue(origins) is { } o) options.AllowedOrigins = List(o);
            if (parse.GetValue(hosts) is { } hs) options.AllowedHosts = List(hs);
            if (parse.GetValue(maxBody) is long mb) options.MaxBodyBytes = mb;
            if (parse.GetValue(name) is { } n) options.ModelName = n;
            if (parse.GetValue(maxBatch) is int b) options.MaxBatch = b;
            if (parse.GetValue(maxQueue) is int q) options.MaxQueue = q;
            if (parse.GetValue(maxContext) is int c) options.MaxContext = c;
            if (parse.GetValue(delay) is double d) options.MaxQueueDelayMs = d;
            if (parse.GetValue(preferred) is { } sizes) options.PreferredBatchSizes = CommandRunner.ParseIds(sizes, "--preferred-batch-sizes").Select(x => (int)x).ToArray();
            if (parse.GetValue(prefill) is int pt) options.MaxPrefillTokens = pt;
            if (parse.GetValue(queueTimeout) is double t) options.QueueTimeoutSeconds = t;
            if (parse.GetValue(shutdown) is double s) options.ShutdownTimeoutSeconds = s;
            if (parse.GetValue(weights) is { } w) options.Weights = w;
            if (parse.GetValue(toolParser) is { } tp) options.ToolCallParser = ToolCallFormat.ByName(tp).Name;
            options.Validate();

            using var generator = TextGenerator.Load(options.ModelDir, CommandRunner.ParseWeights(options.Weights), parse.GetValue(adapter));
            var app = ServerHost.Build(options, generator);
            try
            {
                app.StartAsync().GetAwaiter().GetResult();
            }
            catch (IOException e)
            {
                throw new R1SharpException($"cannot listen on {options.Host}:{options.Port} ({e.Message})");
            }
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
            Console.Error.WriteLine($"serving '{options.ServedModelName}' on {address} (max batch {options.MaxBatch}, max queue {options.MaxQueue}); Ctrl+C stops");
            app.WaitForShutdownAsync().GetAwaiter().GetResult();
            Console.Error.WriteLine("stopped");
            return 0;
        }));
        return command;
    }

    private static string[] List(string text) => text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
}
