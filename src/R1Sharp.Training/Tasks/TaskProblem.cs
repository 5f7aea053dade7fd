namespace R1Sharp.Training.Tasks;

/// One problem: the prompt (or, from a data file, the whole conversation so far as `Messages`), a
/// step-by-step reasoning trace when generated, and the reference answer.
/// `Source`: where a problem from a file came from (file:line), for errors about it.
public sealed record TaskProblem(string Task, string Prompt, string Reasoning, string Answer, IReadOnlyList<int>? Numbers = null, int? Target = null,
    System.Text.Json.Nodes.JsonArray? Messages = null, string? Source = null)
{
    /// The assistant turn the SFT data teaches: `<think>…</think><answer>…</answer>`.
    public string Completion => $"<think>{Reasoning}</think><answer>{Answer}</answer>";
}

/// A family of problems with answers a program can check.
public interface IVerifiableTask
{
    string Name { get; }
    TaskProblem Generate(Random random);
    bool Verify(TaskProblem problem, string answer);
}

public static class VerifiableTasks
{
    public static IVerifiableTask Create(string name, int difficulty = 3) => name switch
    {
        "arithmetic" => new ArithmeticTask(difficulty),
        "countdown" => new CountdownTask(difficulty),
        _ => throw new R1SharpException($"unknown task '{name}' (arithmetic, countdown)"),
    };
}
