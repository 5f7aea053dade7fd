using R1Sharp.Kernels;
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
        if (KernelDispatch(flat) is { } fused)
        {
            DispatchKernel(flat, routing.Weights, routing.Experts, fused);
            return fused.view(x.shape).MoveToOuterDisposeScope();
        }
        var routed = DispatchGrouped(flat, routing.Weights, routing.Experts);
        if (_shared is not null) routed = routed + _shared.forward(flat);
        return routed.view(x.shape).MoveToOuterDisposeScope();
    }

    /// A zeroed output when decoding can run every expert through the fused kernels, else null.
    private Tensor? KernelDispatch(Tensor flat)
    {
        if (_experts.Count == 0 || _experts.Any(e => e.KernelProjections is null) || (_shared is not null && _shared.KernelProjections is null)) return null;
        var needsGrad = _experts[0].KernelProjections!.Value.Gate.NeedsGrad;
        return KernelLinear.Applies(flat, needsGrad) ? zeros_like(flat) : null;
    }

    /// Decoding (a few tokens): each chosen expert runs once on the tokens that chose it and the shared
    /// experts on every token, all in one fused SwiGLU call that reads the weights as stored and adds each
    /// weighted output in place. No sort, gather or scatter op.
    private unsafe void DispatchKernel(Tensor flat, Tensor weights, Tensor experts, Tensor y)
    {
        // Decode-time routing hands over contiguous float32 tensors; converting them would cost an op each.
        var x = flat.is_contiguous() ? flat : flat.contiguous();
        var chosen = experts.is_contiguous() ? experts : experts.contiguous();
        var gates = weights.dtype == ScalarType.Float32 && weights.is_contiguous() ? weights : weights.to_type(ScalarType.Float32).contiguous();
        int n = (int)x.shape[0], k = (int)chosen.shape[1], hidden = (int)x.shape[1];
        long* ids = (long*)TensorMemory.Pointer(chosen);
        float* w = (float*)TensorMemory.Pointer(gates), xp = (float*)TensorMemory.Pointer(x), yp = (float*)TensorMemory.Pointer(y);
        var gathered = KernelScratch.Floats((long)n * k * hidden, KernelScratch.Slot.Gathered);
        var targets = stackalloc int[n * k];
        var scales = stackalloc float[n * k];
        var calls = new List<SwiGluCall>();
        int used = 0;
        foreach (var e in Enumerable.Range(0, n * k).Select(i => ids[i]).Distinct().Order())
        {
            var (g, u, d) = _experts[(int)e].KernelProjections!.Value;
            int first = used;
            for (int slot = 0; slot < n * k; slot++)
                if (ids[slot] == e)
                {
                    Buffer.MemoryCopy(xp + (long)(slot / k) * hidden, gathered + (long)used * hidden, hidden * 4L, hidden * 4L);
                    (targets[used], scales[used]) = (slot / k, w[slot]);
                    used++;
                }
            calls.Add(new SwiGluCall(g.View(), u.View(), d.View(), gathered + (long)first * hidden, used - first, yp, 0f, targets + first, scales + first));
        }
        if (_shared?.KernelProjections is { } shared)
            calls.Add(new SwiGluCall(shared.Gate.View(), shared.Up.View(), shared.Down.View(), xp, n, yp, 1f));
        SwiGlu.Run(calls.ToArray());
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
