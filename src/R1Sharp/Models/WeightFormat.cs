namespace R1Sharp.Models;

/// How a model holds its weights in memory. Compute is float32 in every case: decoding reads the low-
/// precision weights as they are, larger inputs dequantize them for libtorch. In Bf16/Fp8/Int8/Int4,
/// embeddings and lm_head are held in BF16; in Fp8/Int8/Int4 the attention and MLP/expert projections
/// are 8- or 4-bit. Norms and the router stay float32.
public enum WeightFormat { F32, Bf16, Fp8, Int8, Int4 }
