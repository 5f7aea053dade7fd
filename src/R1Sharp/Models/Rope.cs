using static TorchSharp.torch;

namespace R1Sharp.Models;

/// Rotary position embeddings: frequencies (YaRN, Llama-3, linear scaling), cos/sin tables, and the two
/// pairings: DeepSeek's adjacent pairs and Hugging Face's rotate-half.
public static class Rope
{
    /// Plain inverse frequencies 1 / theta^(2i/d), in float32 as the reference computes them.
    public static float[] InverseFrequencies(int dim, double theta) =>
        Enumerable.Range(0, dim / 2).Select(i => (float)(1.0 / Math.Pow(theta, 2.0 * i / dim))).ToArray();

    /// YaRN (official DeepSeek-V3 `precompute_freqs_cis`): frequencies below the correction range
    /// are divided by `factor`, those above it kept, with a linear ramp between.
    public static float[] YarnInverseFrequencies(int dim, double theta, double factor, int originalLength, double betaFast, double betaSlow)
    {
        var freqs = InverseFrequencies(dim, theta);
        double CorrectionDim(double rotations) => dim * Math.Log(originalLength / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = Math.Max(Math.Floor(CorrectionDim(betaFast)), 0);
        double high = Math.Min(Math.Ceiling(CorrectionDim(betaSlow)), dim - 1);
        if (low == high) high += 0.001;
        for (int i = 0; i < freqs.Length; i++)
        {
            var ramp = (float)Math.Clamp((i - low) / (high - low), 0, 1);
            var smooth = 1f - ramp;
            freqs[i] = freqs[i] / (float)factor * (1f - smooth) + freqs[i] * smooth;
        }
        return freqs;
    }

    /// Llama-3 scaling (transformers' `_compute_llama3_parameters`): wavelengths longer than
    /// original/low_freq_factor are divided by `factor`, shorter than original/high_freq_factor kept,
    /// and the band between interpolated smoothly.
    public static float[] Llama3InverseFrequencies(int dim, double theta, double factor, double lowFreqFactor, double highFreqFactor, int originalLength)
    {
        var freqs = InverseFrequencies(dim, theta);
        double lowFreqWavelength = originalLength / lowFreqFactor, highFreqWavelength = originalLength / highFreqFactor;
        for (int i = 0; i < freqs.Length; i++)
        {
            double f = freqs[i], wavelength = 2 * Math.PI / f;
            if (wavelength > lowFreqWavelength) freqs[i] = (float)(f / factor);
            else if (wavelength >= highFreqWavelength)
            {
                var smooth = (originalLength / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                freqs[i] = (float)((1 - smooth) * f / factor + smooth * f);
            }
        }
        return freqs;
    }

    /// YaRN's attention temperature: 0.1 * mscale * ln(factor) + 1 (1 when factor <= 1).
    public static double YarnMscale(double factor, double mscale) => factor <= 1 ? 1.0 : 0.1 * mscale * Math.Log(factor) + 1.0;

    /// cos and sin of position * frequency for positions [0, length): each [length, dim/2], float32.
    public static (Tensor Cos, Tensor Sin) Tables(float[] inverseFrequencies, long length, double attentionFactor = 1.0, Device? device = null)
    {
        using var scope = NewDisposeScope();
        var angles = outer(arange(length, dtype: ScalarType.Float32, device: device), tensor(inverseFrequencies, device: device));
        var cos = angles.cos() * attentionFactor;
        var sin = angles.sin() * attentionFactor;
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// DeepSeek pairing: rotates adjacent pairs (x[2i], x[2i+1]) as the checkpoint stores them.
    /// x [..., d]; cos, sin broadcastable to [..., d/2].
    public static Tensor ApplyInterleaved(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var shape = x.shape;
        var pairs = x.to_type(ScalarType.Float32).reshape([.. shape[..^1], shape[^1] / 2, 2]);
        var even = pairs.select(-1, 0);
        var odd = pairs.select(-1, 1);
        var rotated = stack([even * cos - odd * sin, even * sin + odd * cos], -1);
        return rotated.reshape(shape).to_type(x.dtype).MoveToOuterDisposeScope();
    }

    /// Hugging Face pairing (`rotate_half`): rotates (x[i], x[i + d/2]). x [..., d]; cos, sin [..., d/2].
    public static Tensor ApplyRotateHalf(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var half = x.shape[^1] / 2;
        var first = x.narrow(-1, 0, half);
        var second = x.narrow(-1, half, half);
        return cat([first * cos - second * sin, second * cos + first * sin], -1).MoveToOuterDisposeScope();
    }
}
