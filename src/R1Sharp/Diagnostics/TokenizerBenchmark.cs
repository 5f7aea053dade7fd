using System.Diagnostics;
using System.Text;
using R1Sharp.Tokenization;

namespace R1Sharp.Diagnostics;

/// Encode throughput (UTF-8 MB/s, single thread) on a text, first pass and warm, and decode tokens/s.
public static class TokenizerBenchmark
{
    public sealed record Result(long Bytes, int Tokens, double ColdMegabytesPerSecond, double WarmMegabytesPerSecond, double DecodeTokensPerSecond);

    public static Result Run(PretrainedTokenizer tokenizer, string text, int repeats = 3)
    {
        var bytes = Encoding.UTF8.GetByteCount(text);
        var watch = Stopwatch.StartNew();
        var ids = tokenizer.Encode(text);
        var cold = watch.Elapsed.TotalSeconds;
        var warm = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            watch.Restart();
            tokenizer.Encode(text);
            warm = Math.Min(warm, watch.Elapsed.TotalSeconds);
        }
        watch.Restart();
        tokenizer.Decode(ids);
        var decode = watch.Elapsed.TotalSeconds;
        return new Result(bytes, ids.Length, bytes / 1e6 / cold, bytes / 1e6 / warm, ids.Length / decode);
    }

    /// A varied built-in text (~`megabytes` MB): English prose, code, Chinese, numbers, emoji,
    /// made of seeded random words so that it is not one repeated sentence.
    public static string BuiltInText(double megabytes = 4, int seed = 0)
    {
        var random = new Random(seed);
        string[] english = ["the", "model", "reasoning", "token", "answer", "because", "we", "compute", "expert", "attention", "layer", "training", "is", "of", "and", "with", "DeepSeek", "verifiable", "reward", "policy"];
        string[] chinese = ["模型", "推理", "专家", "注意力", "训练", "奖励", "数学", "代码", "我们", "的", "是", "在"];
        string[] code = ["var x = y + 1;", "for (int i = 0; i < n; i++) {", "return a * b;", "}", "def f(x):", "    return x ** 2", "if (ok) throw new Error(\"bad\");"];
        string[] emoji = ["🤗", "👍🏽", "🧠", "✅", "🚀"];
        var text = new StringBuilder();
        while (text.Length < megabytes * 1e6 / 1.4)
        {
            switch (random.Next(10))
            {
                case < 5:
                    for (int i = random.Next(5, 20); i > 0; i--) text.Append(english[random.Next(english.Length)]).Append(i == 1 ? ". " : " ");
                    break;
                case < 7:
                    for (int i = random.Next(5, 20); i > 0; i--) text.Append(chinese[random.Next(chinese.Length)]);
                    text.Append("。");
                    break;
                case < 9:
                    text.Append('\n').Append(code[random.Next(code.Length)]).Append('\n');
                    break;
                default:
                    text.Append(random.Next(100000)).Append(' ').Append(emoji[random.Next(emoji.Length)]).Append(' ');
                    break;
            }
        }
        return text.ToString();
    }
}
