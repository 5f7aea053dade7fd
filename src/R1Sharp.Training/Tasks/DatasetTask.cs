using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Training.Rl;

namespace R1Sharp.Training.Tasks;

/// Problems from the user's JSONL file, one per line: `{"prompt": "…", "answer": "…"}` or
/// `{"messages": [{"role", "content"}, …], "answer": "…"}` (the conversation the model continues);
/// answers are checked by `MathAnswer` (exact numbers, else normalised text). Without a separate
/// evaluation file, a seeded share of the lines is held out for evaluation and never trained on.
public sealed class DatasetTask : IVerifiableTask
{
    public const long MaxFileBytes = 1L << 30;

    private DatasetTask(List<TaskProblem> train, List<TaskProblem> test) => (Train, Test) = (train, test);

    public string Name => "data";
    public IReadOnlyList<TaskProblem> Train { get; }
    public IReadOnlyList<TaskProblem> Test { get; }

    public TaskProblem Generate(Random random) => Train[random.Next(Train.Count)];

    public bool Verify(TaskProblem problem, string answer) => MathAnswer.Equivalent(answer, problem.Answer);

    public static DatasetTask Load(string path, string? evalPath, int heldOut, int seed)
    {
        var all = Read(path);
        if (evalPath is not null) return new DatasetTask(all, Read(evalPath));
        var order = all.ToList();
        new Random(seed).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(order));
        if (all.Count < 2) throw new R1SharpException($"{path}: one problem cannot be both trained on and held out for evaluation; add problems or give eval_data");
        var held = Math.Clamp(all.Count / 5, 1, Math.Max(1, heldOut));
        return new DatasetTask(order.Skip(held).ToList(), order.Take(held).ToList());
    }

    public static List<TaskProblem> Read(string path)
    {
        var text = InputFile.ReadText(path, MaxFileBytes);
        var problems = new List<TaskProblem>();
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0) continue;
            var where = $"{path}:{i + 1}";
            JsonObject row;
            try { row = JsonNode.Parse(line) as JsonObject ?? throw new R1SharpException($"{where}: expected a JSON object"); }
            catch (JsonException e) { throw new R1SharpException($"{where}: not JSON ({e.Message.Split('\n')[0]})"); }
            var answer = row["answer"] switch
            {
                JsonValue v when v.TryGetValue<string>(out var s) => s,
                JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.ToJsonString(),
                _ => throw new R1SharpException($"{where}: needs \"answer\" (a string or a number)"),
            };
            if (row["messages"] is JsonArray messages)
            {
                string? lastUser = null;
                foreach (var m in messages)
                {
                    if (m is not JsonObject o || o["role"] is not JsonValue r || !r.TryGetValue<string>(out var role) || o["content"] is not JsonValue c || !c.TryGetValue<string>(out var content))
                        throw new R1SharpException($"{where}: each message needs a string \"role\" and \"content\"");
                    if (role is not ("system" or "user" or "assistant" or "tool")) throw new R1SharpException($"{where}: unknown role '{role}'");
                    if (role == "user") lastUser = content;
                }
                if (lastUser is null) throw new R1SharpException($"{where}: \"messages\" has no user message");
                problems.Add(new TaskProblem("data", lastUser, "", answer, Messages: (JsonArray)messages.DeepClone(), Source: where));
            }
            else if (row["prompt"] is JsonValue p && p.TryGetValue<string>(out var prompt) && prompt.Length > 0)
                problems.Add(new TaskProblem("data", prompt, "", answer, Source: where));
            else throw new R1SharpException($"{where}: needs \"prompt\" (a string) or \"messages\" (a list)");
        }
        if (problems.Count == 0) throw new R1SharpException($"{path}: no problems");
        return problems;
    }
}
