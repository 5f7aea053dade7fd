using System.Text.Json.Nodes;
using R1Sharp.Models;

namespace R1Sharp.Quantization;

/// The `quantization_config` written beside 8-bit weights.
/// - fp8: exactly DeepSeek's (`F8_E4M3` weight + float32 `weight_scale_inv` per 128x128 block).
/// - int8 (R1Sharp's weight-only layout): `I8` weight [out, in] + float32 `weight_scale` [out];
///   W = weight * weight_scale[:, None], symmetric, values in [-127, 127].
/// - int4 (R1Sharp's weight-only layout, Int4Group): `U8` weight [out, ⌈in/32⌉·16] + bfloat16
///   `weight_scale` [out, ⌈in/32⌉], symmetric per group of 32 weights of a row.
/// Norms and the router are never converted; embeddings and lm_head stay BF16 in fp8 (as DeepSeek's
/// release keeps them) and become INT8 per row in int8 and int4.
public static class QuantizationFormat
{
    public static JsonObject? ConfigFor(WeightFormat format) => format switch
    {
        WeightFormat.Fp8 => new JsonObject
        {
            ["activation_scheme"] = "dynamic",
            ["fmt"] = "e4m3",
            ["quant_method"] = "fp8",
            ["weight_block_size"] = new JsonArray(QuantizedLinear.Block, QuantizedLinear.Block),
        },
        WeightFormat.Int8 => new JsonObject
        {
            ["quant_method"] = "int8",
            ["bits"] = 8,
            ["granularity"] = "per_output_channel",
            ["symmetric"] = true,
            ["scale_suffix"] = "weight_scale",
            ["modules_to_not_convert"] = new JsonArray("mlp.gate", "layernorm", "norm"),
        },
        WeightFormat.Int4 => new JsonObject
        {
            ["quant_method"] = "int4",
            ["bits"] = 4,
            ["group_size"] = 32,
            ["symmetric"] = true,
            ["packing"] = "per group of 32: 16 bytes, byte k = (q[k] + 8) | (q[k + 16] + 8) << 4",
            ["scale_suffix"] = "weight_scale",
            ["embeddings_and_head"] = "int8 per row",
            ["modules_to_not_convert"] = new JsonArray("mlp.gate", "layernorm", "norm"),
        },
        _ => null,
    };
}
