using System.Diagnostics.Metrics;

namespace R1Sharp.Server;

/// The server's instruments (System.Diagnostics.Metrics), exported at /metrics in Prometheus format.
/// Names follow vLLM's (`vllm:num_requests_running` is `r1sharp_num_requests_running` here) so that
/// existing dashboards translate.
public sealed class ServerMetrics : IDisposable
{
    public const string MeterName = "R1Sharp.Server";
    private static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60];
    private readonly Meter _meter;

    /// `meterName` lets several servers in one process (tests) keep their series apart.
    public ServerMetrics(string meterName = MeterName)
    {
        _meter = new Meter(meterName);
        Requests = _meter.CreateCounter<long>("r1sharp_requests", description: "HTTP requests by endpoint and status code");
        PromptTokens = _meter.CreateCounter<long>("r1sharp_prompt_tokens", description: "prompt tokens prefilled");
        GenerationTokens = _meter.CreateCounter<long>("r1sharp_generation_tokens", description: "tokens generated");
        FinishedSequences = _meter.CreateCounter<long>("r1sharp_request_success", description: "finished sequences by finish reason");
        ExpertTokens = _meter.CreateCounter<long>("r1sharp_expert_tokens", description: "decode tokens routed to each expert, by MoE layer");
        TimeToFirstToken = Histogram("r1sharp_time_to_first_token_seconds", "time from arrival to the first generated token");
        InterTokenLatency = Histogram("r1sharp_inter_token_latency_seconds", "time between consecutive generated tokens of a sequence");
        EndToEnd = Histogram("r1sharp_e2e_request_latency_seconds", "time from arrival to the last token");
        QueueTime = Histogram("r1sharp_request_queue_time_seconds", "time spent waiting for a batch slot");
        BatchSize = _meter.CreateHistogram<int>("r1sharp_batch_size", description: "sequences decoded together per step",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256] });
        _meter.CreateObservableGauge("r1sharp_num_requests_running", () => Running, description: "sequences in the running batch");
        _meter.CreateObservableGauge("r1sharp_num_requests_waiting", () => Waiting, description: "sequences waiting for a slot");
        _meter.CreateObservableGauge("r1sharp_kv_cache_usage_perc", () => KvCacheUsage, description: "fraction of KV-cache token slots in use (0..1)");
        _meter.CreateObservableGauge("r1sharp_kv_cache_in_use_bytes", () => KvCacheBytesInUse, unit: "By", description: "bytes of KV cache holding live tokens");
        _meter.CreateObservableGauge("r1sharp_kv_cache_allocated_bytes", () => KvCacheBytesAllocated, unit: "By", description: "bytes of KV cache allocated");
        _meter.CreateObservableGauge("r1sharp_model_weight_bytes", () => WeightBytes, unit: "By", description: "bytes of model weights (native tensor memory)");
        _meter.CreateObservableGauge("r1sharp_process_managed_bytes", () => GC.GetTotalMemory(false), unit: "By", description: ".NET managed heap in use");
        _meter.CreateObservableGauge("r1sharp_process_resident_bytes", () => Environment.WorkingSet, unit: "By", description: "resident set size (managed + native, incl. tensors)");
    }

    private Histogram<double> Histogram(string name, string description) =>
        _meter.CreateHistogram<double>(name, unit: "s", description: description, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });

    public Counter<long> Requests { get; }
    public Counter<long> PromptTokens { get; }
    public Counter<long> GenerationTokens { get; }
    public Counter<long> FinishedSequences { get; }
    public Counter<long> ExpertTokens { get; }
    public Histogram<double> TimeToFirstToken { get; }
    public Histogram<double> InterTokenLatency { get; }
    public Histogram<double> EndToEnd { get; }
    public Histogram<double> QueueTime { get; }
    public Histogram<int> BatchSize { get; }

    public int Running { get; set; }
    public int Waiting { get; set; }
    public double KvCacheUsage { get; set; }
    public long KvCacheBytesInUse { get; set; }
    public long KvCacheBytesAllocated { get; set; }
    public long WeightBytes { get; set; }

    public void Dispose() => _meter.Dispose();
}
