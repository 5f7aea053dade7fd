using System.CommandLine;
using R1Sharp.Generation;

namespace R1Sharp.Cli;

/// The sampling options shared by `generate` and `chat`. Options the user leaves out take the model
/// folder's generation_config.json defaults.
public sealed class SamplingArguments
{
    private readonly Option<int?> _maxNew = new("--max-new-tokens") { Description = "tokens to generate (default: generation_config.json, else 256)" };
    private readonly Option<bool> _greedy = new("--greedy") { Description = "argmax decoding (ignores temperature and seed)" };
    private readonly Option<double?> _temperature = new("--temperature") { Description = "sampling temperature; 0 = greedy" };
    private readonly Option<int?> _topK = new("--top-k") { Description = "keep the k most likely tokens (0 = off)" };
    private readonly Option<double?> _topP = new("--top-p") { Description = "nucleus sampling mass" };
    private readonly Option<double?> _minP = new("--min-p") { Description = "drop tokens below min_p x the top probability" };
    private readonly Option<double?> _repetitionPenalty = new("--repetition-penalty") { Description = "CTRL-style penalty on seen tokens (1 = off)" };
    private readonly Option<long?> _seed = new("--seed") { Description = "sampling seed" };
    private readonly Option<string[]> _stop = new("--stop") { Description = "stop string (repeatable); not included in the output" };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _maxNew, _greedy, _temperature, _topK, _topP, _minP, _repetitionPenalty, _seed, _stop }) command.Options.Add(option);
    }

    /// `defaults` (from the model folder) overridden by what the user typed.
    public SamplingOptions Resolve(ParseResult parse, SamplingOptions defaults)
    {
        var s = defaults;
        if (parse.GetValue(_maxNew) is int n) s = s with { MaxNewTokens = n };
        if (parse.GetValue(_temperature) is double t) s = s with { Temperature = t };
        if (parse.GetValue(_topK) is int k) s = s with { TopK = k };
        if (parse.GetValue(_topP) is double p) s = s with { TopP = p };
        if (parse.GetValue(_minP) is double m) s = s with { MinP = m };
        if (parse.GetValue(_repetitionPenalty) is double r) s = s with { RepetitionPenalty = r };
        if (parse.GetValue(_seed) is long seed) s = s with { Seed = seed };
        if (parse.GetValue(_stop) is { Length: > 0 } stops) s = s with { StopStrings = stops };
        if (parse.GetValue(_greedy)) s = s with { Temperature = 0 };
        if (s.MaxNewTokens < 1) throw new R1SharpException("--max-new-tokens must be >= 1");
        s.Validate();
        return s;
    }
}
