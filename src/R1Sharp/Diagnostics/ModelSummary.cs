using System.Text.RegularExpressions;
using R1Sharp.Models;

namespace R1Sharp.Diagnostics;

/// What `inspect` reports: parameter counts (total, active per token), layer kinds and KV-cache cost
/// (MLA latent for DeepSeek, grouped-query K/V for the dense family; "standard" is full multi-head K/V).
public sealed record ModelSummary(
    string ModelType, long TotalParameters, long MtpParameters, long ActiveParameters,
    int DenseLayers, int MoeLayers, int RoutedExperts, int SharedExperts, int ExpertsPerToken,
    long KvBytesPerToken, long StandardKvBytesPerToken, int KvElementBytes)
{
    /// Local (sliding-window) layers: how many, their window and sink tokens (0 when none).
    public int LocalLayers { get; init; }
    public int Window { get; init; }
    public int Sinks { get; init; }

    /// KV-cache bytes of one sequence of `tokens` tokens: global layers grow with it, local layers
    /// hold at most `sliding_window` tokens (sinks included).
    public long KvBytesAt(long tokens)
    {
        var perLayer = KvBytesPerToken / Math.Max(1, DenseLayers + MoeLayers);
        var layers = DenseLayers + MoeLayers;
        var local = Math.Min(tokens, (long)Window);
        return perLayer * ((layers - LocalLayers) * tokens + LocalLayers * (LocalLayers > 0 ? local : 0));
    }

    private static int LocalCount(ModelConfig c) => Enumerable.Range(0, c.NumHiddenLayers).Count(c.IsLocalLayer);

    private static readonly Regex LayerIndex = new(@"^model\.layers\.(\d+)\.", RegexOptions.Compiled);

    /// Counts from a model's parameter names and shapes (works on the meta device: nothing is allocated).
    public static ModelSummary Of(CausalLM model, int kvElementBytes = 4)
    {
        if (model.Config is DenseConfig dense)
        {
            var parameters = model.parameters().Sum(p => p.NumberOfElements);
            var kv = (long)dense.NumHiddenLayers * 2 * dense.NumKeyValueHeads * dense.HeadDim * kvElementBytes;
            var mha = (long)dense.NumHiddenLayers * 2 * dense.NumAttentionHeads * dense.HeadDim * kvElementBytes;
            return new ModelSummary(dense.ModelType, parameters, 0, parameters, dense.NumHiddenLayers, 0, 0, 0, 0, kv, mha, kvElementBytes)
                { LocalLayers = LocalCount(dense), Window = dense.Window ?? 0, Sinks = dense.NumSinkTokens };
        }
        var config = (DeepSeekConfig)model.Config;
        long total = 0, mtp = 0, routed = 0;
        foreach (var (name, p) in model.named_parameters())
        {
            var match = LayerIndex.Match(name);
            if (match.Success && int.Parse(match.Groups[1].Value) >= config.NumHiddenLayers) { mtp += p.NumberOfElements; continue; }
            total += p.NumberOfElements;
            if (name.Contains(".mlp.experts.")) routed += p.NumberOfElements;
        }
        var moeLayers = Enumerable.Range(0, config.NumHiddenLayers).Count(config.IsMoeLayer);
        var k = config.NumExpertsPerTok ?? 0;
        var active = total - routed + (config.RoutedExperts == 0 ? 0 : routed * k / config.RoutedExperts);
        long layers = config.NumHiddenLayers;
        var mla = layers * (config.KvLoraRank + config.QkRopeHeadDim) * kvElementBytes;
        var standard = layers * config.NumAttentionHeads * (config.QkHeadDim + config.VHeadDim) * kvElementBytes;
        return new ModelSummary(config.ModelType, total, mtp, active, config.NumHiddenLayers - moeLayers, moeLayers,
            config.RoutedExperts, config.NSharedExperts ?? 0, k, mla, standard, kvElementBytes)
            { LocalLayers = LocalCount(config), Window = config.Window ?? 0, Sinks = config.NumSinkTokens };
    }
}
