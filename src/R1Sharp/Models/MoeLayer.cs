using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// DeepSeekMoE: shared experts on every token plus top-k routed experts.
/// Routed experts run grouped: tokens are sorted by expert and each expert runs once on its batch.
public sealed class MoeLayer : nn.Module
{
    [ComponentName(Name = "gate")] private readonly MoeGate _gate;
    [ComponentName(Name = "experts")] private readonly ModuleList<FeedForward> _experts;
    [ComponentName(Name = "shared_experts")] private readonly FeedForward? _shared;

    public MoeLayer(DeepSeekConfig config, WeightFormat format = WeightFormat.F32) : base(nameof(MoeLayer))
    {
        _gate = new MoeGate(config);
        _experts = new ModuleList<FeedForward>(Enumerable.Range(0, config.RoutedExperts)
            .Select(_ => new FeedForward(config.HiddenSize, config.MoeIntermediateSize, format)).ToArray());
        if (config.SharedIntermediateSize > 0) _shared = new FeedForward(config.HiddenSize, config.SharedIntermediateSize, format);
        RegisterComponents();
    }

    public MoeGate Gate => _gate;
    public IReadOnlyList<FeedForward> Experts => _experts.ToList();

    /// x [B, T, H] -> [B, T, H]; records the routing in `trace` when given.
    public Tensor Forward(Tensor x, ForwardTrace? trace = null, int layer = -1)
    {
        using var scope = NewDisposeScope();
        var flat = x.reshape(-1, x.shape[^1]);                                  // [N, H]
        var routing = _gate.Route(flat);                                        // [N, k]
        trace?.AddRouting(layer, routing);
        var routed = DispatchGrouped(flat, routing.Weights, routing.Experts);
        if (_shared is not null) routed = routed + _shared.forward(flat);
        return routed.view(x.shape).MoveToOuterDisposeScope();
    }

    private Tensor DispatchGrouped(Tensor flat, Tensor weights, Tensor experts)
    {
        long k = experts.shape[1];
        var flatExperts = experts.flatten();                                    // [N*k]
        var order = flatExperts.sort(stable: true).Indices;
        var tokenOfSlot = order.div(k, rounding_mode: RoundingMode.floor);      // token feeding each sorted slot
        var counts = flatExperts.bincount(null, _experts.Count).data<long>().ToArray();
        var inputs = flat.index_select(0, tokenOfSlot);                         // [N*k, H], grouped by expert
        var outputs = new List<Tensor>();
        long start = 0;
        for (int e = 0; e < counts.Length; e++)
        {
            if (counts[e] == 0) continue;
            outputs.Add(_experts[e].forward(inputs.narrow(0, start, counts[e])));
            start += counts[e];
        }
        var weighted = cat(outputs, 0) * weights.flatten().index_select(0, order).unsqueeze(1);
        return zeros_like(flat).index_add_(0, tokenOfSlot, weighted, 1.0);
    }

    /// The obvious per-token loop, kept as an independent check of the grouped dispatch.
    internal Tensor ForwardPerToken(Tensor x)
    {
        using var scope = NewDisposeScope();
        var flat = x.reshape(-1, x.shape[^1]);
        var (weights, experts, _, _) = _gate.Route(flat);
        var ids = experts.data<long>().ToArray();
        var rows = new List<Tensor>();
        for (int t = 0; t < flat.shape[0]; t++)
        {
            var token = flat.narrow(0, t, 1);
            var sum = zeros_like(token);
            for (int j = 0; j < experts.shape[1]; j++)
                sum = sum + _experts[(int)ids[t * experts.shape[1] + j]].forward(token) * weights[t, j];
            rows.Add(_shared is null ? sum : sum + _shared.forward(token));
        }
        return cat(rows, 0).view(x.shape).MoveToOuterDisposeScope();
    }
}
