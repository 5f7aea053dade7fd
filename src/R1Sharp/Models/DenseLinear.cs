using R1Sharp.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// A float32 linear layer (HF names: `weight`, and `bias` when it has one). Inside an `Autocast.Bf16()` scope its matmul
/// runs in bfloat16 (weights and inputs cast, output back to float32), as torch.autocast does;
/// the weight itself, its gradient and the optimizer stay float32.
public sealed class DenseLinear : nn.Module<Tensor, Tensor>, IKernelProjection
{
    private readonly Parameter weight;
    private readonly Parameter? bias;

    public DenseLinear(long inFeatures, long outFeatures, bool hasBias = false) : base(nameof(DenseLinear))
    {
        var bound = 1.0 / Math.Sqrt(inFeatures);
        weight = new Parameter(empty(outFeatures, inFeatures, device: ModelDevice.Current).uniform_(-bound, bound));
        if (hasBias) bias = new Parameter(zeros(outFeatures, device: ModelDevice.Current));
        RegisterComponents();
    }

    public Parameter Weight => weight;
    public Tensor? Bias => bias;
    /// A LoRA adapter on this layer (outside the module tree: checkpoints keep the base weights only).
    public LoraWeights? Lora { get; set; }
    public bool NeedsGrad => weight.requires_grad || bias is { requires_grad: true };
    /// Kernels read the weight alone, so an adapted layer always runs its own forward.
    public bool KernelReadable => Lora is not { Enabled: true };
    public WeightView View() => KernelLinear.View(weight);

    public override Tensor forward(Tensor x)
    {
        if (Lora is { Enabled: true } lora)
        {
            using var scope = NewDisposeScope();
            return (Base(x) + lora.Delta(x, training)).MoveToOuterDisposeScope();
        }
        return Base(x);
    }

    private Tensor Base(Tensor x)
    {
        if (!Autocast.IsBf16 && KernelLinear.Applies(x, NeedsGrad || Lora is not null)) return KernelLinear.Forward(x, View(), bias);
        if (!Autocast.IsBf16) return SmallBatchLinear.Forward(x, weight, bias);
        using var scope = NewDisposeScope();
        var y = nn.functional.linear(x.to_type(ScalarType.BFloat16), weight.to_type(ScalarType.BFloat16));
        if (bias is not null) y = y.to_type(ScalarType.Float32) + bias;
        return y.to_type(ScalarType.Float32).MoveToOuterDisposeScope();
    }
}

/// Mixed precision for training: matmuls of DenseLinear layers in bfloat16 while the scope is open.
public static class Autocast
{
    [ThreadStatic] private static int _depth;

    public static bool IsBf16 => _depth > 0;

    public static IDisposable Bf16(bool enabled = true) => new Scope(enabled);

    private sealed class Scope : IDisposable
    {
        private readonly bool _enabled;
        public Scope(bool enabled) { _enabled = enabled; if (enabled) _depth++; }
        public void Dispose() { if (_enabled) _depth--; }
    }
}
