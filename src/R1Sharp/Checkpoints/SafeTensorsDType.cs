using static TorchSharp.torch;

namespace R1Sharp.Checkpoints;

/// safetensors dtype names and what they are in memory. F8_E4M3 is kept as raw bytes (libtorch via
/// TorchSharp has no float8 type) and decoded by Fp8E4M3.
public static class SafeTensorsDType
{
    private static readonly Dictionary<string, (ScalarType Type, int Size)> Known = new()
    {
        ["F64"] = (ScalarType.Float64, 8),
        ["F32"] = (ScalarType.Float32, 4),
        ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2),
        ["F8_E4M3"] = (ScalarType.Byte, 1),
        ["I64"] = (ScalarType.Int64, 8),
        ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2),
        ["I8"] = (ScalarType.Int8, 1),
        ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    public static bool IsKnown(string dtype) => Known.ContainsKey(dtype);
    public static ScalarType StorageType(string dtype) => Known[dtype].Type;
    public static int ElementSize(string dtype) => Known[dtype].Size;

    public static string NameOf(ScalarType type) => type switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new ArgumentException($"dtype {type} cannot be stored in safetensors"),
    };

    /// Parses a user-facing dtype option (f32, bf16, f16).
    public static ScalarType Parse(string name) => name.ToLowerInvariant() switch
    {
        "f32" or "float32" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        "f16" or "float16" => ScalarType.Float16,
        _ => throw new R1SharpException($"unsupported dtype '{name}' (f32, bf16, f16)"),
    };
}
