using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Generation;
using R1Sharp.Tokenization;
using R1Sharp.Training.Rl;
using R1Sharp.Training.Tasks;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

public class GrpoTests
{
    [Theory]
    [InlineData("group")]
    [InlineData("batch")]
    [InlineData("none")]
    public void GroupAdvantagesHaveZeroMean(string scaling)
    {
        var rewards = tensor(new float[] { 1, 0, 0, 1, 0.2f, 0, 1, 1, 0.5f, 0.5f, 0.5f, 0.5f }).view(3, 4);
        var advantages = GrpoMath.Advantages(rewards, scaling);
        Numerics.AssertClose(zeros(3), advantages.mean([1L]), 1e-6, "group means");
        Assert.Equal(0f, advantages[2].abs().sum().item<float>());           // equal rewards: no advantage
        if (scaling == "group") Assert.Equal(1.0f, advantages[0].std().item<float>(), 3);
    }

    [Fact]
    public void AGroupWithEqualRewardsContributesNoGradientAndPromptTokensNone()
    {
        using var model = TinyModels.Model(c => { c["vocab_size"] = ByteTokenizer.VocabSize; c["max_position_embeddings"] = 64; });
        long[][] prompts = [[1, 3, 20, 21, 4], [1, 3, 22, 4]];
        var completions = new List<BatchCompletion> { new([30, 31, 32], false), new([33, 34], true) };
        var (inputs, targets, mask) = R1Sharp.Training.Rl.GrpoTrainer.Sequences(prompts, completions, ByteTokenizer.Eos);
        Assert.Equal(ByteTokenizer.Eos, targets[0, 7].item<long>());
        Assert.Equal(new float[] { 0, 0, 0, 0, 1, 1, 1, 1 }, mask[0].data<float>().ToArray());   // 3 completion tokens + <|eos|>
        Assert.Equal(new float[] { 0, 0, 0, 1, 1, 0, 0, 0 }, mask[1].data<float>().ToArray());   // truncated: no stop token
        // A completion that ended at another of the stop ids (Llama 3's <|eot_id|> among its eos ids) is trained on that one.
        var other = R1Sharp.Training.Rl.GrpoTrainer.Sequences(prompts, [new([30, 31, 32], false, 77), new([33, 34], true)], ByteTokenizer.Eos);
        Assert.Equal(77, other.Targets[0, 7].item<long>());

        // Equal rewards -> zero advantages -> zero gradient (beta 0; with beta > 0 the policy equals the reference).
        var advantages = GrpoMath.Advantages(tensor(new float[] { 0.7f, 0.7f }).view(1, 2), "group").flatten();
        var logits = model.Forward(inputs);
        var logProbs = GrpoMath.TokenLogProbs(logits, targets);
        var parts = GrpoMath.PolicyLoss(logProbs, logProbs.detach(), logProbs.detach(), advantages, mask, 0.2, 0.2, 0.04, "grpo", 8);
        parts.Loss.backward();
        Assert.All(model.parameters().Where(p => p.grad is not null), p => Assert.Equal(0f, p.grad!.abs().max().item<float>()));
        Assert.Equal(0.0, parts.Kl);

        // Non-zero advantages: gradient flows, but never into the logits of prompt positions.
        var logitsLeaf = model.Forward(inputs).detach().requires_grad_(true);
        var lp = GrpoMath.TokenLogProbs(logitsLeaf, targets);
        var loss = GrpoMath.PolicyLoss(lp, lp.detach(), lp.detach(), tensor(new float[] { 1, -1 }), mask, 0.2, 0.2, 0, "grpo", 8).Loss;
        loss.backward();
        var grad = logitsLeaf.grad!.abs().sum(-1);                                                   // [2, T]
        Assert.Equal(0f, (grad * (1 - mask)).sum().item<float>());
        Assert.True((grad * mask).sum().item<float>() > 0);
    }

    [Fact]
    public void KlIsZeroWhenThePolicyEqualsTheReferenceAndPositiveOtherwise()
    {
        var a = randn([3, 5]).log_softmax(-1);
        Assert.Equal(0f, GrpoMath.KlK3(a, a).abs().max().item<float>());
        var b = randn([3, 5]).log_softmax(-1);
        Assert.True(GrpoMath.KlK3(a, b).min().item<float>() >= 0);
        Assert.True(GrpoMath.KlK3(a, b).sum().item<float>() > 0);
    }

    [Fact]
    public void ClippingFollowsTheAdvantageSign()
    {
        var old = zeros(1, 2);
        var mask = ones(1, 2);
        var up = tensor(new float[] { 0.5f, 0.5f }).view(1, 2);                  // ratio e^0.5 > 1 + eps
        Assert.Equal(1.0, GrpoMath.PolicyLoss(up, old, old, tensor(new float[] { 1 }), mask, 0.2, 0.2, 0, "dapo", 2).ClipFraction);
        Assert.Equal(0.0, GrpoMath.PolicyLoss(up, old, old, tensor(new float[] { -1 }), mask, 0.2, 0.2, 0, "dapo", 2).ClipFraction);
        Assert.Equal(0.0, GrpoMath.PolicyLoss(up, old, old, tensor(new float[] { 1 }), mask, 0.2, 0.7, 0, "dapo", 2).ClipFraction);   // epsilon_high
    }

    [Fact]
    public void RewardsCheckFormatAndGuardAgainstHacks()
    {
        var arithmetic = new ArithmeticTask(3);
        var p = new TaskProblem("arithmetic", "123 + 456 =", "", "579");
        var format = new FormatReward();
        var correct = new CorrectnessReward(arithmetic);
        Assert.Equal(1.0, format.Score(p, "<think>3+6=9.</think><answer>579</answer>", 10, false));
        Assert.Equal(1.0, correct.Score(p, "<think>3+6=9.</think><answer>579</answer>", 10, false));
        Assert.Equal(0.0, format.Score(p, "<think>x</think><answer></answer>", 5, false));           // empty answer
        Assert.Equal(0.0, correct.Score(p, "<think>x</think><answer> </answer>", 5, false));
        Assert.Equal(0.0, format.Score(p, "<answer>579</answer>", 5, false));                          // no reasoning
        Assert.Equal(0.0, format.Score(p, "<think>a</think><think>b</think><answer>579</answer>", 5, false));
        Assert.Equal(0.0, format.Score(p, "<think>a</think><answer>579</answer> extra", 5, false));
        Assert.Equal(1.0, correct.Score(p, "<think>a</think><answer>579</answer> extra", 5, false));  // correctness only reads the tag
        Assert.Equal(0.0, correct.Score(p, "<think>a</think><answer>580</answer>", 5, false));

        // The template already opened <think>: the completion must only close it; a second <think> earns nothing.
        var opened = new FormatReward(thinkOpenedByPrompt: true);
        Assert.Equal(1.0, opened.Score(p, "3+6=9.</think><answer>579</answer>", 5, false));
        Assert.Equal(0.0, opened.Score(p, "<think>3+6=9.</think><answer>579</answer>", 5, false));

        var countdown = new CorrectnessReward(new CountdownTask(3));
        var c = new TaskProblem("countdown", "Using the numbers [5, 3, 15], create an equation that equals 15.", "", "5*3", [5, 3, 15], 15);
        Assert.Equal(0.0, countdown.Score(c, "<think>.</think><answer>15</answer>", 5, false));      // copied from the prompt
        Assert.Equal(1.0, countdown.Score(c, "<think>.</think><answer>5*3</answer>", 5, false));
        Assert.Equal(-1.0, new LengthPenalty(64, 16).Score(p, "", 64, true));
        Assert.Equal(0.0, new LengthPenalty(64, 16).Score(p, "", 40, false));
        Assert.Equal(-0.5, new LengthPenalty(64, 16).Score(p, "", 56, false));
    }

    [Fact]
    public void FormatTagsAreConfigurableAndTheAnswerMayBeUntagged()
    {
        var p = new TaskProblem("math", "What is 3 + 4?", "", "7");
        var tags = new FormatTags { Think = ["<reasoning>", "</reasoning>"], Answer = ["<solution>", "</solution>"] };
        var format = new FormatReward(tags: tags);
        Assert.Equal(1.0, format.Score(p, "<reasoning>3+4</reasoning><solution>7</solution>", 5, false));
        Assert.Equal(1.0, format.Score(p, "\n<reasoning>\n3+4\n</reasoning>\n\n<solution>\n7\n</solution>\n", 5, false));   // newlines between blocks
        Assert.Equal(0.0, format.Score(p, "<think>3+4</think><answer>7</answer>", 5, false));                       // the default tags are not these
        Assert.Equal(0.0, format.Score(p, "<reasoning>a</reasoning>x<solution>7</solution>", 5, false));            // text between blocks
        Assert.Equal(0.0, format.Score(p, "<reasoning>a</reasoning><solution>6</solution><solution>7</solution>", 5, false));   // two answers
        Assert.Equal(1.0, new CorrectnessReward(new ArithmeticTask(1), tags: tags).Score(p with { Prompt = "3 + 4 =" }, "<reasoning>a</reasoning><solution>7</solution>", 5, false));
        Assert.Equal(1.0, new MathReward(tags).Score(p, "<reasoning>a</reasoning><solution>7.0</solution>", 5, false));
        Assert.Equal(0.0, new MathReward(tags).Score(p, "<reasoning>a</reasoning><answer>7</answer>", 5, false));

        // R1-Distill style: the answer is the text after the reasoning block.
        var distill = new FormatTags { Answer = null };
        Assert.Equal(1.0, new FormatReward(tags: distill).Score(p, "<think>\n3+4=7\n</think>\n\nThe answer is $\\boxed{7}$.", 5, false));
        Assert.Equal(0.0, new FormatReward(tags: distill).Score(p, "<think>3+4=7</think>\n  ", 5, false));           // no answer
        Assert.Equal(0.0, new FormatReward(tags: distill).Score(p, "<think>a</think>7<think>b</think>8", 5, false));
        Assert.Equal(1.0, new FormatReward(true, distill).Score(p, "3+4=7\n</think>\n7", 5, false));                  // the prompt opened <think>
        Assert.Equal(1.0, new MathReward(distill).Score(p, "<think>a</think> 7 ", 5, false));
        Assert.Equal(1.0, new MathReward(distill).Score(p, "<think>a</think> so \\boxed{\\frac{14}{2}}", 5, false));

        foreach (var (json, message) in new[]
        {
            ("{\"think\": [\"<t>\"]}", "format_tags.think must be two different"),
            ("{\"think\": [\"<t>\", \"<t>\"]}", "format_tags.think must be two different"),
            ("{\"answer\": [\"\", \"</a>\"]}", "format_tags.answer must be two different"),
            ("{\"answer\": [\"<think>\", \"</a>\"]}", "must not share a tag"),
            ("{\"think\": [\"<t>\", \"" + new string('x', 65) + "\"]}", "at most 64 characters"),
        })
        {
            var e = Assert.Throws<R1SharpException>(() => new GrpoConfig { InitFrom = "x", FormatTags = System.Text.Json.JsonSerializer.Deserialize<FormatTags>(json)! }.Validate());
            Assert.Contains(message, e.Message);
        }
    }

    [Fact]
    public void SequenceLevelRatiosFollowGspo()
    {
        // One sequence of two tokens, advantage 2: GSPO's ratio is exp of the mean token log-ratio.
        double a = -1.0, b = -2.0, a0 = -1.1, b0 = -1.96, advantage = 2;
        var logProbs = tensor(new[] { (float)a, (float)b }).view(1, 2).requires_grad_(true);
        var old = tensor(new[] { (float)a0, (float)b0 }).view(1, 2);
        var mask = tensor(new float[] { 1, 1 }).view(1, 2);
        var parts = GrpoMath.PolicyLoss(logProbs, old, old, tensor(new[] { (float)advantage }), mask, 0.2, 0.2, 0, "grpo", 2, "sequence");
        var s = Math.Exp(((a - a0) + (b - b0)) / 2);
        Assert.Equal(-s * advantage, parts.Loss.item<float>(), 5);
        parts.Loss.backward();
        Numerics.AssertClose(tensor(new[] { (float)(-advantage * s / 2), (float)(-advantage * s / 2) }).view(1, 2), logProbs.grad!, 1e-6, "d loss / d log-prob");
        Assert.Equal(0.0, parts.ClipFraction);

        // Tokens one by one would not clip here (ratios e^0.1, e^-0.04), but the sequence's does at epsilon 0.01.
        var clipped = GrpoMath.PolicyLoss(logProbs, old, old, tensor(new[] { (float)advantage }), mask, 0.01, 0.01, 0, "grpo", 2, "sequence");
        Assert.Equal(-(1.01) * advantage, clipped.Loss.item<float>(), 5);
        Assert.Equal(1.0, clipped.ClipFraction);

        // A padded position changes nothing; bnpo is the mean over the batch's tokens, as dapo.
        var padded = GrpoMath.PolicyLoss(cat([logProbs.detach(), tensor(new float[] { 5 }).view(1, 1)], 1), cat([old, zeros(1, 1)], 1), cat([old, zeros(1, 1)], 1),
            tensor(new[] { (float)advantage }), tensor(new float[] { 1, 1, 0 }).view(1, 3), 0.2, 0.2, 0, "grpo", 3, "sequence");
        Assert.Equal(-s * advantage, padded.Loss.item<float>(), 5);
        var lp = randn(3, 4); var o = lp + 0.1f * randn(3, 4); var m = tensor(new float[] { 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0 }).view(3, 4); var adv = tensor(new float[] { 1, -1, 0.5f });
        Assert.Equal(GrpoMath.PolicyLoss(lp, o, o, adv, m, 0.2, 0.2, 0, "dapo", 4).Loss.item<float>(), GrpoMath.PolicyLoss(lp, o, o, adv, m, 0.2, 0.2, 0, "bnpo", 4).Loss.item<float>());
        Assert.Contains("importance_sampling_level 'word'", Assert.Throws<R1SharpException>(() => new GrpoConfig { InitFrom = "x", ImportanceSamplingLevel = "word" }.Validate()).Message);
    }

    [Fact]
    public void WilsonIntervalsAndPassAtKMatchTheirFormulas()
    {
        var (low, high) = GrpoMath.Wilson(50, 100);
        Assert.Equal(0.4038, low, 3);
        Assert.Equal(0.5962, high, 3);
        Assert.Equal(1 - 3.0 / 5, GrpoMath.PassAtK(5, 2, 1), 9);
        Assert.Equal(1 - (3.0 * 2) / (5 * 4), GrpoMath.PassAtK(5, 2, 2), 9);
        Assert.Equal(1.0, GrpoMath.PassAtK(5, 4, 2));
    }

    [Fact]
    public void BatchedGenerationMatchesEachPromptAlone()
    {
        using var model = TinyModels.Model(c => { c["vocab_size"] = ByteTokenizer.VocabSize; c["max_position_embeddings"] = 64; });
        long[][] prompts = [[1, 3, 40, 41, 42, 4], [1, 3, 50, 4], [1, 3, 60, 61, 4]];
        var options = SamplingOptions.GreedyDecoding(10) with { StopTokenIds = [17] };
        var batched = BatchGenerator.Generate(model, prompts, options);
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(TokenGenerator.Generate(model, prompts[i], options).ToArray(), batched[i].Tokens);
    }

    [Fact]
    public void GrpoRunsResumesExactlyAndWritesItsRun()
    {
        var dir = TestPaths.TempDir();
        using (var model = TinyModels.Model(c => { c["vocab_size"] = ByteTokenizer.VocabSize; c["max_position_embeddings"] = 128; }, std: 0.02))
            ModelIO.Save(model, Path.Combine(dir, "init"));
        File.WriteAllText(Path.Combine(dir, "grpo.json"), new JsonObject
        {
            ["init_from"] = "init", ["task"] = "arithmetic", ["difficulty"] = 1, ["steps"] = 4, ["prompts_per_step"] = 2, ["group_size"] = 3,
            ["max_new_tokens"] = 12, ["eval_every"] = 2, ["eval_problems"] = 4, ["checkpoint_every"] = 2, ["iterations"] = 2, ["beta"] = 0.01,
            ["rewards"] = new JsonObject { ["format"] = 0.2, ["correctness"] = 1.0, ["length"] = 0.1 },
        }.ToJsonString());
        List<JsonObject> Lines(string run) => File.ReadLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).Where(l => l["reward"] is not null).ToList();
        void Run(string run, bool resume, int? stop)
        {
            var (config, resolved) = GrpoConfig.Load(Path.Combine(dir, "grpo.json"), []);
            using var trainer = new GrpoTrainer(config, resolved, dir, run);
            trainer.Run(resume, stopAfter: stop);
        }
        Run(Path.Combine(dir, "a"), false, null);
        Run(Path.Combine(dir, "b"), false, 2);
        Run(Path.Combine(dir, "b"), true, null);
        var a = Lines(Path.Combine(dir, "a"));
        var b = Lines(Path.Combine(dir, "b"));
        Assert.Equal(4, a.Count);
        for (int i = 0; i < 4; i++) Assert.Equal((double)a[i]["loss"]!, (double)b[i]["loss"]!, 4);
        Assert.True(File.Exists(Path.Combine(dir, "a", "plots", "reward.png")));
        Assert.True(File.Exists(Path.Combine(dir, "a", "manifest.json")));
    }
}
