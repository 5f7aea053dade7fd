using System.Diagnostics;
using R1Sharp.Kernels;
using R1Sharp.Models;
using static TorchSharp.torch;
unsafe {
Console.WriteLine($"threads torch {get_num_threads()} kernels {Environment.ProcessorCount}");
var shapes = new (int Out, int In)[] { (896, 896), (4864, 896), (896, 4864), (151936, 896), (2048, 2048), (11008, 2048), (128, 128) };
var filter = args.Length > 0 ? args[0] : "";
foreach (var (o, i) in shapes)
foreach (var rows in new[] { 1, 2, 4, 8 })
{
    var copies = (int)Math.Max(1, Math.Min(2000, 256e6 / ((long)o * i * 4)));
    var ws = Enumerable.Range(0, copies).Select(_ => randn(o, i)).ToArray();
    var x = randn(rows, i); var y = empty(rows, o);
    var xp = (float*)TensorMemory.Pointer(x); var yp = (float*)TensorMemory.Pointer(y);
    var views = ws.Select(w => new WeightView(StoredWeight.F32, (float*)TensorMemory.Pointer(w), o, i)).ToArray();
    double Time(Action<int> a) { for (int c = 0; c < copies; c++) a(c); var best = double.MaxValue; for (int k = 0; k < 3; k++) { var sw = Stopwatch.StartNew(); for (int c = 0; c < copies; c++) a(c); best = Math.Min(best, sw.Elapsed.TotalSeconds / copies); } return best; }
    var tk = Time(c => FewRowMatmul.Run(views[c], xp, rows, null, yp));
    var tl = Time(c => { using var s = NewDisposeScope(); SmallBatchLinear.Forward(x, ws[c]); });
    var tn = Time(c => { using var s = NewDisposeScope(); nn.functional.linear(x, ws[c]); });
    FewRowMatmul.Run(views[0], xp, rows, null, yp);
    var err = (nn.functional.linear(x, ws[0]) - y).abs().max().item<float>();
    double GB(double t) => (long)o * i * 4 / t / 1e9;
    Console.WriteLine($"{o}x{i} rows {rows}: kernel {tk*1e6:F0} us ({GB(tk):F1} GB/s)  smallbatch {tl*1e6:F0} us ({GB(tl):F1})  linear {tn*1e6:F0} us ({GB(tn):F1})  maxerr {err:E1}");
    foreach (var w in ws) w.Dispose();
}
}
