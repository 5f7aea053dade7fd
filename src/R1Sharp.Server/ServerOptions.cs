namespace R1Sharp.Server;

/// `r1sharp serve` settings. Bound from the "R1Sharp" section of appsettings.json, environment
/// variables (R1SHARP__PORT, R1SHARP__MAXBATCH, …) and command-line options, then validated.
public sealed class ServerOptions
{
    public string ModelDir { get; set; } = "";
    /// The model name clients send (default: the folder name).
    public string? ModelName { get; set; }
    public string Host { get; set; } = "127.0.0.1";
    public int Port { get; set; } = 8000;
    /// Required as `Authorization: Bearer KEY` on /v1/*. Prefer `--api-key-file` or R1SHARP__APIKEY:
    /// a key on the command line is visible to every user in /proc/PID/cmdline.
    public string? ApiKey { get; set; }
    /// A file holding the API key (its first line; surrounding whitespace ignored).
    public string? ApiKeyFile { get; set; }
    /// Origins allowed to call the API from a browser (CORS), e.g. http://localhost:3000, or "*".
    /// None by default: cross-origin requests are refused.
    public string[] AllowedOrigins { get; set; } = [];
    /// Host header names the server answers to (DNS rebinding). Default: the loopback names when
    /// listening on a loopback address, any name otherwise.
    public string[] AllowedHosts { get; set; } = [];
    /// Largest request body accepted; larger ones get 413.
    public long MaxBodyBytes { get; set; } = 8 << 20;
    public string Weights { get; set; } = "f32";
    /// Sequences decoded together in one forward (KV-cache rows).
    public int MaxBatch { get; set; } = 16;
    /// Requests allowed to wait for a slot; more are refused with 429.
    public int MaxQueue { get; set; } = 64;
    /// Tokens per sequence (prompt + completion); bounds KV-cache memory. Default: the model's context.
    public int? MaxContext { get; set; }
    /// Triton-style dynamic batching: how long an idle scheduler may wait for a preferred batch size.
    public double MaxQueueDelayMs { get; set; }
    /// Triton-style preferred batch sizes to wait for (within MaxQueueDelayMs) when the scheduler is idle.
    public int[] PreferredBatchSizes { get; set; } = [];
    /// Prompt tokens prefilled per scheduler step (vLLM's max_num_batched_tokens for prefill): longer
    /// prompts are prefilled in chunks across steps while the running sequences keep decoding.
    public int MaxPrefillTokens { get; set; } = 2048;
    /// Requests waiting longer than this for a slot fail with a clear error.
    public double QueueTimeoutSeconds { get; set; } = 60;
    /// On shutdown, running requests get this long to finish before they are cancelled.
    public double ShutdownTimeoutSeconds { get; set; } = 10;
    /// max_tokens when a request gives none.
    public int DefaultMaxTokens { get; set; } = 512;
    /// How the model writes tool calls (hermes, deepseek_v3, deepseek_v31); default: from its chat template.
    public string? ToolCallParser { get; set; }

    public string ServedModelName => ModelName ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(ModelDir)));

    public void Validate()
    {
        void Require(bool ok, string message) { if (!ok) throw new R1SharpException("serve: " + message); }
        Require(ModelDir.Length > 0, "a model folder is required");
        Require(Directory.Exists(ModelDir), $"model directory not found: {ModelDir}");
        Require(Port is >= 0 and <= 65535, $"port {Port} is not in 0..65535");
        Require(MaxBatch is >= 1 and <= 1024, $"max batch {MaxBatch} is not in 1..1024");
        Require(MaxQueue >= 0, $"max queue {MaxQueue} must be >= 0");
        Require(MaxContext is null or >= 2, "max context must be >= 2");
        Require(MaxQueueDelayMs >= 0, "max queue delay must be >= 0");
        Require(PreferredBatchSizes.All(b => b >= 1 && b <= MaxBatch), "preferred batch sizes must be in 1..max batch");
        Require(QueueTimeoutSeconds > 0, "queue timeout must be > 0");
        Require(ShutdownTimeoutSeconds >= 0, "shutdown timeout must be >= 0");
        Require(DefaultMaxTokens >= 1, "default max tokens must be >= 1");
        Require(MaxPrefillTokens >= 1, "max prefill tokens must be >= 1");
        Require(Weights is "f32" or "bf16" or "fp8" or "int8" or "int4", $"weights '{Weights}' must be f32, bf16, fp8, int8 or int4");
        Require(MaxBodyBytes is >= 1024 and <= 1L << 30, $"max body bytes {MaxBodyBytes} is not in 1024..{1L << 30}");
        Require(AllowedOrigins.All(o => o == "*" || Uri.TryCreate(o, UriKind.Absolute, out var u) && u.Scheme is "http" or "https" && u.AbsolutePath == "/"),
            "allowed origins must be \"*\" or scheme://host[:port], e.g. http://localhost:3000");
        Require(AllowedHosts.All(h => h.Length > 0 && !h.Contains('/')), "allowed hosts must be host names, e.g. localhost or example.com");
        Require(ApiKeyFile is null || ApiKey is null, "give the API key once: --api-key-file or --api-key (or R1SHARP__APIKEY), not both");
        if (ApiKeyFile is { } file)
        {
            Require(File.Exists(file), $"API key file not found: {file}");
            ApiKey = File.ReadLines(file).FirstOrDefault()?.Trim() ?? "";
            ApiKeyFile = null;
            Require(ApiKey.Length > 0, $"API key file {file} is empty");
        }
        Require(ApiKey is null || ApiKey.Length > 0, "the API key must not be empty");
    }

    /// The Host names accepted when none are configured: loopback names on a loopback address, else any.
    public IReadOnlyList<string> EffectiveAllowedHosts =>
        AllowedHosts.Length > 0 ? AllowedHosts
        : Host is "localhost" || System.Net.IPAddress.TryParse(Host, out var address) && System.Net.IPAddress.IsLoopback(address) ? ["localhost", "127.0.0.1", "[::1]"]
        : ["*"];
}
