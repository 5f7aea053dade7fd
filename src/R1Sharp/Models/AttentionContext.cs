using R1Sharp.Generation;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// How MLA computes attention: expand the latent to per-head K/V, or absorb kv_b_proj into q and the output.
public enum AttentionMode { Absorbed, Naive }

/// Where a forward writes the new tokens of local layers into their rolling caches: for each kept
/// token, its row, its ring slot, and its index among the new tokens.
public sealed record RingWrite(Tensor Rows, Tensor Slots, Tensor Tokens);

/// What one forward pass tells every attention layer: rope tables for the new tokens, their
/// positions, the additive masks over keys (global layers: causal; local layers: causal within the
/// window plus the sink tokens), and the cache (null: attend within the given tokens). With a rolling
/// cache, local layers attend over [ring slots, new tokens] and then write `Ring`.
public sealed record AttentionContext(Tensor Cos, Tensor Sin, Tensor Positions, Tensor Mask, long KeyLength, KvCache? Cache, AttentionMode Mode)
{
    public bool[] LocalLayers { get; init; } = [];
    public Tensor? LocalMask { get; init; }
    public RingWrite? Ring { get; init; }

    public bool IsLocal(int layer) => layer < LocalLayers.Length && LocalLayers[layer];

    /// The mask a layer's attention uses.
    public Tensor MaskFor(int layer) => IsLocal(layer) ? LocalMask! : Mask;

    /// Whether this layer keeps its keys in a rolling cache (local layer, cache with a ring).
    public bool UsesRing(int layer) => Cache is not null && Ring is not null && IsLocal(layer);

    /// The per-token tensors [B, T, ...] a layer attends over after storing the new ones in the cache:
    /// the new tokens alone (no cache), the cached positions 0..KeyLength (global layers), or
    /// [ring slots, new tokens] (local layers with a rolling cache).
    public Tensor[] StoreAndRead(int layer, params Tensor[] current)
    {
        if (Cache is null) return current;
        if (UsesRing(layer))
        {
            var ring = Cache.ReadRing(layer);                                                     // [B, C, ...]
            var keys = ring.Select((r, i) => cat([r.to_type(current[i].dtype), current[i]], 1)).ToArray();
            Cache.WriteRing(layer, Ring!, current);                                               // after reading: slots are reused
            return keys;
        }
        Cache.Write(layer, Positions, current);
        return Cache.Read(layer, KeyLength).Select((t, i) => t.to_type(current[i].dtype)).ToArray();   // [B, S, ...]
    }
}
