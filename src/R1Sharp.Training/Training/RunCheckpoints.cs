using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using R1Sharp.Tokenization;
using TorchSharp;

namespace R1Sharp.Training.Training;

/// `runs/<name>/checkpoints/step-NNNNNN/`: the model in Hugging Face layout (config.json,
/// model.safetensors, tokenizer files), optimizer.bin and trainer_state.json. Each checkpoint is
/// written into a temporary folder and renamed, so a crash never leaves half of one; the last K stay.
public static class RunCheckpoints
{
    public const string StateFile = "trainer_state.json";
    public const string OptimizerFile = "optimizer.bin";

    public static string Folder(string runDir) => Path.Combine(runDir, "checkpoints");

    /// With `lora`, the checkpoint is a PEFT adapter folder (the frozen base is not copied).
    public static string Save(string runDir, int step, CausalLM model, TorchSharp.Modules.AdamW optimizer, JsonObject state, int keep, Data.DocumentEncoder? tokenizer = null,
        (LoraConfig Config, IReadOnlyList<(string Name, LoraWeights Weights)> Adapters)? lora = null)
    {
        var root = Folder(runDir);
        Directory.CreateDirectory(root);
        var final = Path.Combine(root, $"step-{step:D6}");
        var temp = final + ".tmp-" + Environment.ProcessId;
        if (Directory.Exists(temp)) Directory.Delete(temp, true);
        if (lora is { } adapter) LoraAdapter.Save(temp, adapter.Config, adapter.Adapters);
        else ModelIO.Save(model, temp);
        (tokenizer ?? Data.DocumentEncoder.Byte).SaveTokenizer(temp);
        optimizer.save_state_dict(Path.Combine(temp, OptimizerFile));
        state["step"] = step;
        File.WriteAllText(Path.Combine(temp, StateFile), state.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        if (Directory.Exists(final)) Directory.Delete(final, true);
        Directory.Move(temp, final);
        foreach (var old in Completed(runDir).SkipLast(keep)) Directory.Delete(old, true);
        return final;
    }

    /// Completed checkpoints, oldest first (by step number: step-1000000 comes after step-999999).
    public static List<string> Completed(string runDir)
    {
        var root = Folder(runDir);
        if (!Directory.Exists(root)) return [];
        return Directory.GetDirectories(root, "step-*")
            .Select(d => (Dir: d, Step: StepOf(d)))
            .Where(c => c.Step is not null && File.Exists(Path.Combine(c.Dir, StateFile)))
            .OrderBy(c => c.Step).Select(c => c.Dir).ToList();
    }

    /// The step of a checkpoint folder named `step-N` (null for anything else, e.g. a temporary folder).
    private static long? StepOf(string dir) =>
        Path.GetFileName(dir) is var name && name.StartsWith("step-", StringComparison.Ordinal)
        && long.TryParse(name.AsSpan(5), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var step) ? step : null;

    public static string? Latest(string runDir) => Completed(runDir).LastOrDefault();

    public static JsonObject ReadState(string checkpoint) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, StateFile))) as JsonObject
        ?? throw new R1SharpException($"{checkpoint}: corrupt {StateFile}");
}
