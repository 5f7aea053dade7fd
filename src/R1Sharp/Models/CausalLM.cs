using R1Sharp.Generation;
using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// A decoder-only language model whose parameter names are the Hugging Face tensor names.
public abstract class CausalLM : nn.Module
{
    protected CausalLM(string name) : base(name) { }

    public abstract ModelConfig Config { get; }

    private Tensor _ropeCos = null!, _ropeSin = null!;

    /// The RoPE cos/sin tables [max_position_embeddings, rope_dim/2]: buffers, but not checkpoint tensors.
    protected void SetRopeTables((Tensor Cos, Tensor Sin) tables)
    {
        (_ropeCos, _ropeSin) = tables;
        register_buffer("rope_cos", _ropeCos, persistent: false);
        register_buffer("rope_sin", _ropeSin, persistent: false);
    }

    /// Bytes of every tensor the model holds (parameters and buffers, the RoPE tables included, which
    /// TorchSharp's buffers() leaves out); works on the meta device.
    public double MemoryBytes => parameters().Concat(buffers()).Append(_ropeCos).Append(_ropeSin)
        .DistinctBy(t => t.Handle).Sum(t => (double)t.NumberOfElements * t.ElementSize);

    /// How the weights are held in memory (compute is float32 regardless).
    public abstract WeightFormat WeightFormat { get; }

    /// ids [B, T] -> float32 logits [B, T, V]. With a cache, row b's tokens continue at cache.Lengths[b]
    /// and the cache advances by validLengths[b] (default T): rows may be right-padded. `lastOnly`
    /// returns [B, 1, V] for each row's last valid token only (what generation needs from a prefill).
    /// Activation checkpointing per decoder layer; families that do not have it refuse.
    public virtual bool GradientCheckpointing
    {
        get => false;
        set { if (value) throw new R1SharpException($"gradient_checkpointing is not available for model_type {Config.ModelType} (it is for qwen2, qwen3, llama, deepseek_v2, deepseek_v3)"); }
    }

    public abstract Tensor Forward(Tensor ids, KvCache? cache = null, long[]? validLengths = null, ForwardTrace? trace = null, bool lastOnly = false);

    /// Final hidden states [B, T, H] -> float32 logits through lm_head (or the tied embedding), then the
    /// cache advances by each row's valid length.
    protected static Tensor Logits(Tensor h, nn.Module<Tensor, Tensor>? lmHead, TokenEmbedding embedding, KvCache? cache, long[]? validLengths, bool lastOnly)
    {
        cache?.Advance(validLengths ?? Enumerable.Repeat(h.shape[1], (int)h.shape[0]).ToArray());
        if (lastOnly) h = LastPositions(h, validLengths);
        if (lmHead is not null) return lmHead.forward(h).to_type(ScalarType.Float32);
        // A tied head reads the embedding table as it is stored (bf16 included), never a float32 copy of it.
        if (KernelLinear.Applies(h, embedding.NeedsGrad)) return KernelLinear.Forward(h, embedding.View(), null);
        if (embedding.Format == WeightFormat.F32) return SmallBatchLinear.Forward(h, embedding.Weight);
        using var scope = NewDisposeScope();
        return SmallBatchLinear.Forward(h, embedding.Dequantized()).MoveToOuterDisposeScope();
    }

    /// Hidden states [B, T, H] -> [B, 1, H] at each row's last valid position.
    protected static Tensor LastPositions(Tensor h, long[]? validLengths)
    {
        if (validLengths is null) return h.narrow(1, h.shape[1] - 1, 1);
        var index = (tensor(validLengths, device: h.device) - 1).view(-1, 1, 1).expand(-1, 1, h.shape[2]);
        return h.gather(1, index);
    }

    public abstract KvCache CreateCache(int batchSize, int maxLength);

    /// Throws a user error naming the first id outside [0, vocab_size).
    public void CheckTokenIds(IEnumerable<long> ids)
    {
        foreach (var id in ids)
            if (id < 0 || id >= Config.VocabSize)
                throw new R1SharpException($"token id {id} is outside the vocabulary (0..{Config.VocabSize - 1})");
    }

    public Device Device => parameters().First().device;

    /// Positions, rope rows, mask and key length of `length` new tokens per row (continuing the cache if given).
    protected AttentionContext BuildContext(long batch, long length, Device device, KvCache? cache, AttentionMode mode, long[]? validLengths = null)
    {
        Tensor positions;
        long keyLength;
        if (cache is null)
        {
            positions = arange(length, device: device).unsqueeze(0).expand(batch, length);
            keyLength = length;
        }
        else
        {
            if (cache.BatchSize != batch) throw new ArgumentException($"cache holds {cache.BatchSize} rows, input has {batch}");
            keyLength = cache.Lengths.Max() + length;
            if (keyLength > cache.MaxLength)
                throw new R1SharpException($"sequence of {keyLength} tokens exceeds the context of {cache.MaxLength}");
            positions = cache.NextPositions(length, device);
        }
        var last = positions.max().item<long>();
        if (last >= Config.MaxPositionEmbeddings)
            throw new R1SharpException($"position {last} exceeds max_position_embeddings {Config.MaxPositionEmbeddings}");
        var flat = positions.reshape(-1);
        var cos = _ropeCos.index_select(0, flat).view(batch, length, -1);
        var sin = _ropeSin.index_select(0, flat).view(batch, length, -1);
        var context = new AttentionContext(cos, sin, positions, CausalMask(positions, keyLength), keyLength, cache, mode);
        return Config.Window is int window
            ? WithWindow(context, window - Config.NumSinkTokens, validLengths ?? Enumerable.Repeat(length, (int)batch).ToArray())
            : context;
    }

    /// Local layers' mask, and with a rolling cache where their new tokens go. `window`: the recent
    /// keys a local query sees besides the sinks.
    private AttentionContext WithWindow(AttentionContext ctx, int window, long[] validLengths)
    {
        var sinks = Config.NumSinkTokens;
        var local = Enumerable.Range(0, ctx.Cache?.Layers ?? Config.NumHiddenLayers + 1).Select(Config.IsLocalLayer).ToArray();
        var device = ctx.Positions.device;
        if (ctx.Cache is not { RingCapacity: > 0 } cache)
        {
            var keys = arange(ctx.KeyLength, device: device).unsqueeze(0).expand(ctx.Positions.shape[0], -1);
            return ctx with { LocalLayers = local, LocalMask = AttentionWindow.Mask(ctx.Positions, keys, window, sinks) };
        }
        var lengths = tensor(cache.Lengths, device: device);
        var valid = tensor(validLengths, device: device);
        var (ringPositions, ringValid) = AttentionWindow.RingContents(lengths, window, sinks);
        var newValid = arange(ctx.Positions.shape[1], device: device).unsqueeze(0) < valid.unsqueeze(1);
        var mask = AttentionWindow.Mask(ctx.Positions, cat([ringPositions, ctx.Positions], 1), window, sinks, cat([ringValid, newValid], 1));
        return ctx with { LocalLayers = local, LocalMask = mask, Ring = AttentionWindow.Writes(ctx.Positions, lengths, valid, window, sinks) };
    }

    /// A float32 cache of `layers` layers holding up to `maxLength` tokens (at most the model's context);
    /// local layers get a ring of sliding_window slots when that is smaller.
    protected KvCache NewCache(int batchSize, int maxLength, IReadOnlyList<long[]> perTokenShapes, int layers)
    {
        var length = Math.Min(maxLength, Config.MaxPositionEmbeddings);
        var ring = Config.Window is int w && w < length ? w : 0;
        var local = Enumerable.Range(0, layers).Select(Config.IsLocalLayer).ToArray();
        return new KvCache(batchSize, length, perTokenShapes, layers, ScalarType.Float32, Device, local, ring);
    }

    /// Additive causal mask [B, 1, T, S]: the query at position p sees keys 0..p.
    protected static Tensor CausalMask(Tensor positions, long keyLength)
    {
        using var scope = NewDisposeScope();
        var keys = arange(keyLength, device: positions.device).view(1, 1, 1, -1);
        var visible = keys <= positions.unsqueeze(1).unsqueeze(-1);
        return zeros(visible.shape, device: positions.device)
            .masked_fill(visible.logical_not(), double.NegativeInfinity).MoveToOuterDisposeScope();
    }
}
