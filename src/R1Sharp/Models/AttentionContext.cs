using R1Sharp.Generation;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// How MLA computes attention: expand the latent to per-head K/V, or absorb kv_b_proj into q and the output.
public enum AttentionMode { Absorbed, Naive }

/// What one forward pass tells every attention layer: rope tables for the new tokens, their
/// positions, the additive mask over keys, and the cache (null: attend within the given tokens).
public sealed record AttentionContext(Tensor Cos, Tensor Sin, Tensor Positions, Tensor Mask, long KeyLength, KvCache? Cache, AttentionMode Mode);
