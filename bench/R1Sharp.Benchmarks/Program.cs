using LLama;
using LLama.Common;
using LLama.Native;
NativeLibraryConfig.All.WithCuda(false).WithVulkan(false).WithAvx(AvxLevel.Avx2).WithAutoFallback(false);
var p = new ModelParams(args[0]) { GpuLayerCount = 0, ContextSize = 64 };
using var w = LLamaWeights.LoadFromFile(p);
foreach (var (k, v) in w.Metadata) if (k.StartsWith("tokenizer.ggml.pre") || k.Contains("model")) Console.WriteLine($"{k} = {v}");
using var c = w.CreateContext(p);
foreach (var t in new[] { "How's", "'s", " 's" }) Console.WriteLine($"{t}: {string.Join(",", c.Tokenize(t, false, true).Select(x => (int)x))}");
