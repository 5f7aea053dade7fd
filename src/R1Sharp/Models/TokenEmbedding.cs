using R1Sharp.Kernels;
using R1Sharp.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// The token embedding table (HF: nn.Embedding `embed_tokens`, `weight` [vocab, hidden]), made on
/// ModelDevice.Current (TorchSharp's nn.Embedding is always built on the CPU first, so even a meta-device
/// model would allocate its largest matrix). Held as float32 (training), bf16, or in the 8- and 4-bit
/// formats as INT8 rows with a float32 scale per row (`weight_scale`), the precision llama.cpp's
/// quantizers keep for this table; a tied head reads it through the kernels as stored.
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>, IStoredWeight
{
    private readonly Tensor weight;
    private readonly Tensor? weight_scale;
    private readonly long _vocab, _hidden;

    public TokenEmbedding(long vocab, long hidden, WeightFormat format) : base(nameof(TokenEmbedding))
    {
        (_vocab, _hidden) = (vocab, hidden);
        Format = format switch { WeightFormat.F32 => WeightFormat.F32, WeightFormat.Int8 or WeightFormat.Int4 => WeightFormat.Int8, _ => WeightFormat.Bf16 };
        var device = ModelDevice.Current;
        if (Format == WeightFormat.Int8)
        {
            weight = zeros(vocab, hidden, dtype: ScalarType.Int8, device: device);
            weight_scale = ones(vocab, device: device);
        }
        else
        {
            weight = new Parameter(empty(vocab, hidden, dtype: Format == WeightFormat.F32 ? ScalarType.Float32 : ScalarType.BFloat16, device: device).normal_());
        }
        RegisterComponents();
    }

    public WeightFormat Format { get; }
    public long[] LogicalShape => [_vocab, _hidden];
    /// The table as a trainable parameter (float formats only).
    public Parameter Weight => weight as Parameter ?? throw new InvalidOperationException("an 8-bit embedding table is not a parameter");
    public bool NeedsGrad => weight.requires_grad;

    /// ids [...] -> float32 [..., hidden].
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var flat = ids.reshape(-1);
        var rows = weight.index_select(0, flat).to_type(ScalarType.Float32);
        if (weight_scale is not null) rows = rows * weight_scale.index_select(0, flat).unsqueeze(1);
        return rows.view([.. ids.shape, _hidden]).MoveToOuterDisposeScope();
    }

    public Tensor Dequantized() => weight_scale is null ? weight.to_type(ScalarType.Float32) : Int8Channel.Dequantize(weight, weight_scale);

    public unsafe WeightView View() => Format switch
    {
        WeightFormat.Int8 => new WeightView(StoredWeight.Int8, TensorMemory.Pointer(weight), (int)_vocab, (int)_hidden, TensorMemory.Pointer(weight_scale!)),
        _ => KernelLinear.View(weight),
    };

    public void Assign(Tensor dense)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        if (weight_scale is null) { weight.copy_(dense); return; }
        var (q, scale) = Int8Channel.Quantize(dense);
        weight.copy_(q);
        weight_scale.copy_(scale);
    }

    public void AssignRaw(Tensor codes, Tensor scale)
    {
        using var noGrad = no_grad();
        weight.copy_(codes);
        weight_scale!.copy_(scale);
    }
}
