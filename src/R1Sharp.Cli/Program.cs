using System.CommandLine;
using System.Globalization;
using R1Sharp.Cli;
using R1Sharp.Cli.Commands;

// Before anything allocates tensors: malloc's behaviour for large blocks (see NativeRuntime).
R1Sharp.NativeRuntime.Configure();
// Numbers in files and JSON output look the same whatever the machine's locale.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.DefaultThreadCurrentUICulture = CultureInfo.InvariantCulture;

// Trials and workers started by `tune` end with their parent.
ParentWatch.StartIfAsked();

var root = new RootCommand("R1Sharp: DeepSeek-R1-style models in .NET (TorchSharp).");
root.Subcommands.Add(InitCommand.Create());
root.Subcommands.Add(InspectCommand.Create());
root.Subcommands.Add(LogitsCommand.Create());
root.Subcommands.Add(TokenizeCommand.Create());
root.Subcommands.Add(ChatTemplateCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(ChatCommand.Create());
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(QuantizeCommand.Create());
root.Subcommands.Add(ExportGgufCommand.Create());
root.Subcommands.Add(MergeLoraCommand.Create());
root.Subcommands.Add(PrepareCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(GrpoCommand.Create());
root.Subcommands.Add(EvalTaskCommand.Create());
root.Subcommands.Add(ReproduceCommand.Create());
root.Subcommands.Add(TuneCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
return CommandRunner.Run(root, args);
