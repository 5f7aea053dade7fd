using System.Diagnostics;
using R1Sharp.Kernels;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Diagnostics;

/// Times prefill, cached decode, decode without the cache (recomputing the whole sequence per token,
/// as a model without a KV cache must), and the MoE layers against a dense SwiGLU of the same active size.
public static class ForwardBenchmark
{
    public sealed record Result(
        int PrefillTokens, double PrefillTokensPerSecond, int DecodeSteps, double DecodeTokensPerSecond, double UncachedDecodeTokensPerSecond,
        double MoeOverheadRatioPrefill, double MoeOverheadRatioDecode, double MoeSecondsPrefill, double DenseSecondsPrefill,
        double MoeSecondsDecode, double DenseSecondsDecode, int Threads);

    public static Result Run(CausalLM model, int tokens, int decodeSteps = 32, int repeats = 5, long seed = 0)
    {
        using var noGrad = no_grad();
        var generator = new Generator((ulong)seed);
        var ids = randint(0, model.Config.VocabSize, [1, tokens], generator: generator, dtype: ScalarType.Int64);

        var prefill = Median(repeats, () =>
        {
            using var scope = NewDisposeScope();
            model.Forward(ids);
        });

        var decodeTokensPerSecond = DecodeSpeed.TokensPerSecond(model, ids[0].data<long>().ToArray(), decodeSteps);

        var sequence = ids.clone();
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < decodeSteps; i++)
        {
            using var scope = NewDisposeScope();
            var token = model.Forward(sequence, lastOnly: true)[.., -1].argmax(-1, keepdim: true);
            var longer = cat([sequence, token], 1);
            sequence.Dispose();
            sequence = longer.DetachFromDisposeScope();
        }
        var uncached = watch.Elapsed.TotalSeconds / decodeSteps;
        sequence.Dispose();

        var (moePrefill, densePrefill) = model is DeepSeekForCausalLM d ? MoeVersusDense(d, tokens, repeats, generator) : (double.NaN, double.NaN);
        var (moeDecode, denseDecode) = (double.NaN, double.NaN);
        using (LibtorchThreads.ForDecoding())   // as the decode engine runs a step
            if (model is DeepSeekForCausalLM d2) (moeDecode, denseDecode) = MoeVersusDense(d2, 1, repeats * 40, generator);
        return new Result(tokens, tokens / prefill, decodeSteps, decodeTokensPerSecond, 1 / uncached,
            moePrefill / densePrefill, moeDecode / denseDecode, moePrefill, densePrefill, moeDecode, denseDecode, get_num_threads());
    }

    /// Seconds for one MoE layer vs one dense SwiGLU whose inner size is (k + shared) experts' worth.
    private static (double Moe, double Dense) MoeVersusDense(DeepSeekForCausalLM model, int tokens, int repeats, Generator generator)
    {
        var moe = model.Layers.Select(l => l.Moe).FirstOrDefault(m => m is not null);
        if (moe is null) return (double.NaN, double.NaN);
        var c = model.DeepSeek;
        using var dense = new FeedForward(c.HiddenSize, (long)c.MoeIntermediateSize * (c.NumExpertsPerTok!.Value + (c.NSharedExperts ?? 0)));
        using var x = randn([1, tokens, c.HiddenSize], generator: generator);
        var moeTime = Median(repeats, () => { using var s = NewDisposeScope(); moe.Forward(x); });
        var denseTime = Median(repeats, () => { using var s = NewDisposeScope(); dense.forward(x); });
        return (moeTime, denseTime);
    }

    private static double Median(int repeats, Action action)
    {
        action();   // warm-up
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            var watch = Stopwatch.StartNew();
            action();
            times[i] = watch.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return times[repeats / 2];
    }
}
