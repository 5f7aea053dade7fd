using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using R1Sharp.Generation;
using R1Sharp.Server.Api;
using R1Sharp.Server.Scheduling;

namespace R1Sharp.Server;

/// Builds the OpenAI-compatible server around a loaded model: endpoints, API key, errors in OpenAI's
/// shape, Prometheus metrics, and a graceful shutdown that drains the scheduler.
public static class ServerHost
{
    public static WebApplication Build(ServerOptions options, TextGenerator generator, string meterName = ServerMetrics.MeterName)
    {
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseUrls($"http://{options.Host}:{options.Port}");
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(options.ShutdownTimeoutSeconds + 5));
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(meterName).AddPrometheusExporter());

        var metrics = new ServerMetrics(meterName);
        var scheduler = new BatchScheduler(generator.Model, generator.DefaultOptions().StopTokenIds.Select(i => (int)i), options, metrics);
        var endpoints = new OpenAiEndpoints(generator, scheduler, options);
        builder.Services.AddSingleton(metrics);
        builder.Services.AddSingleton(scheduler);

        var app = builder.Build();
        var draining = false;
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            draining = true;
            scheduler.DrainAsync(TimeSpan.FromSeconds(options.ShutdownTimeoutSeconds)).GetAwaiter().GetResult();
        });
        app.Lifetime.ApplicationStopped.Register(() => { scheduler.Dispose(); metrics.Dispose(); });

        app.UseExceptionHandler(error => error.Run(async context =>
        {
            var failure = context.Features.Get<IExceptionHandlerFeature>()?.Error;
            var apiError = failure switch
            {
                ApiError e => e,
                R1SharpException e => new ApiError(400, e.Message, null, "invalid_request"),   // our errors are written for the user
                _ => new ApiError(500, "internal server error: " + failure?.GetType().Name, null, "internal_error"),
            };
            await apiError.WriteAsync(context.Response);
        }));
        app.Use(async (context, next) =>
        {
            var endpoint = context.Request.Path.Value ?? "";
            try
            {
                if (endpoint.StartsWith("/v1/", StringComparison.Ordinal) && options.ApiKey is { } key
                    && context.Request.Headers.Authorization.ToString() != "Bearer " + key)
                {
                    var missing = string.IsNullOrEmpty(context.Request.Headers.Authorization.ToString());
                    await new ApiError(401, missing ? "missing API key: send 'Authorization: Bearer <key>'" : "incorrect API key", null, "invalid_api_key")
                        .WriteAsync(context.Response);
                    return;
                }
                await next(context);
            }
            catch (ApiError e) when (!context.Response.HasStarted)
            {
                await e.WriteAsync(context.Response);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException && context.RequestAborted.IsCancellationRequested)
            {
                // the client went away; its sequences were cancelled with the request
            }
            finally
            {
                metrics.Requests.Add(1, new("endpoint", Known(endpoint)), new("status", context.Response.StatusCode));
            }
        });

        app.MapGet("/health", () => Results.Json(new { status = "ok" }));
        app.MapGet("/ready", () => draining
            ? Results.Json(new { status = "draining" }, statusCode: 503)
            : Results.Json(new { status = "ready", model = options.ServedModelName }));
        app.MapGet("/v1/models", () => Results.Text(endpoints.Models().ToJsonString(Json.Options), "application/json"));
        app.MapGet("/v1/models/{id}", (string id) => Results.Text(endpoints.Model(id).ToJsonString(Json.Options), "application/json"));
        app.MapPost("/v1/chat/completions", endpoints.ChatCompletions);
        app.MapPost("/v1/completions", endpoints.Completions);
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapFallback(context => new ApiError(404, $"no route for {context.Request.Method} {context.Request.Path}", null, "not_found").WriteAsync(context.Response));
        return app;
    }

    private static string Known(string path) => path switch
    {
        "/v1/chat/completions" or "/v1/completions" or "/v1/models" or "/health" or "/ready" or "/metrics" => path,
        _ when path.StartsWith("/v1/models/", StringComparison.Ordinal) => "/v1/models/{id}",
        _ => "other",
    };
}
