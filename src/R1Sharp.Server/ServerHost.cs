using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
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
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = options.MaxBodyBytes);
        if (options.AllowedOrigins.Length > 0) builder.Services.AddCors();
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(options.ShutdownTimeoutSeconds + 5));
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(meterName).AddPrometheusExporter());

        var metrics = new ServerMetrics(meterName);
        var scheduler = new BatchScheduler(generator.Model, options, metrics);
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
            try
            {
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
                var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText;
                metrics.Requests.Add(1, new("endpoint", route is null || route.Contains('*') ? "other" : route), new("status", context.Response.StatusCode));
            }
        });
        app.UseRouting();
        if (options.AllowedOrigins.Length > 0)
            app.UseCors(cors => (options.AllowedOrigins.Contains("*") ? cors.AllowAnyOrigin() : cors.WithOrigins(options.AllowedOrigins)).AllowAnyHeader().AllowAnyMethod());
        app.UseRequestGuard(options);

        app.MapGet("/health", () => Results.Json(new { status = "ok" }));
        app.MapGet("/ready", () => draining
            ? Results.Json(new { status = "draining" }, statusCode: 503)
            : Results.Json(new { status = "ready", model = options.ServedModelName }));
        var api = app.MapGroup("/v1").WithMetadata(ApiKeyRequired.Instance);
        api.MapGet("/models", () => Results.Text(endpoints.Models().ToJsonString(Json.Options), "application/json"));
        api.MapGet("/models/{id}", (string id) => Results.Text(endpoints.Model(id).ToJsonString(Json.Options), "application/json"));
        api.MapPost("/chat/completions", endpoints.ChatCompletions);
        api.MapPost("/completions", endpoints.Completions);
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapFallback(context => new ApiError(404, $"no route for {context.Request.Method} {context.Request.Path}", null, "not_found").WriteAsync(context.Response));
        return app;
    }
}
