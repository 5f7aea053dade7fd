using System.CommandLine;
using R1Sharp.Checkpoints;
using R1Sharp.Diagnostics;
using R1Sharp.Models;
using Spectre.Console;
using static TorchSharp.torch;

namespace R1Sharp.Cli.Commands;

public static class InspectCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Hugging Face model folder" };
        var command = new Command("inspect", "Show parameters, layers, experts, KV-cache cost, dtype and size of a model.") { dir };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var path = parse.GetValue(dir)!;
            var config = ModelConfig.Load(path);
            ModelSummary summary;
            set_default_device(META);   // shapes only: nothing is allocated or read
            try
            {
                using var model = ModelIO.Create(config);
                summary = ModelSummary.Of(model);
            }
            finally
            {
                set_default_device(CPU);
            }
            using var checkpoint = Checkpoint.Open(path);
            var dtypes = checkpoint.Names.GroupBy(n => checkpoint.Entry(n).DType).OrderByDescending(g => g.Count()).Select(g => g.Key);
            var bytes = checkpoint.Names.Sum(n => checkpoint.Entry(n).End - checkpoint.Entry(n).Begin);

            var table = new Table().AddColumn("property").AddColumn(new TableColumn("value").RightAligned());
            table.AddRow("model_type", summary.ModelType);
            table.AddRow("parameters (total)", $"{summary.TotalParameters:N0}");
            table.AddRow("parameters (active per token)", $"{summary.ActiveParameters:N0}");
            if (summary.MtpParameters > 0) table.AddRow("parameters (MTP modules)", $"{summary.MtpParameters:N0}");
            table.AddRow("layers (dense / MoE)", $"{summary.DenseLayers} / {summary.MoeLayers}");
            if (summary.MoeLayers > 0) table.AddRow("experts (routed / shared / per token)", $"{summary.RoutedExperts} / {summary.SharedExperts} / {summary.ExpertsPerToken}");
            if (config is DenseConfig dense) table.AddRow("attention heads (query / key-value)", $"{dense.NumAttentionHeads} / {dense.NumKeyValueHeads}");
            table.AddRow(config is DenseConfig ? "KV cache per token (grouped-query, f32)" : "KV cache per token (MLA latent, f32)", Size(summary.KvBytesPerToken));
            table.AddRow("KV cache per token (standard MHA, f32)", Size(summary.StandardKvBytesPerToken));
            if (summary.LocalLayers > 0)
                table.AddRow("local layers (window / sinks)", $"{summary.LocalLayers} of {summary.DenseLayers + summary.MoeLayers} ({summary.Window} / {summary.Sinks})");
            table.AddRow("KV cache at 4k / 32k / 128k tokens (f32)", string.Join(" / ", new[] { 4096L, 32768, 131072 }.Select(t => Size(summary.KvBytesAt(t)))));
            table.AddRow("dtype", string.Join(" + ", dtypes));
            table.AddRow("size of weights", Size(bytes));
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    private static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F2} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F2} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:F1} KiB",
        _ => $"{bytes} B",
    };
}
