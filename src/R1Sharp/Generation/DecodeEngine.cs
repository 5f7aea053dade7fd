using R1Sharp.Kernels;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// A sequence that got something in a step: its new token, or null when it stopped at a stop id, and
/// the sampled token's log-probabilities when its options ask for them.
public readonly record struct StepResult(DecodeSequence Sequence, long? Token, TokenLogprobs? Logprobs = null);

/// The one decode loop, as nanochat's Engine: a KV cache of `rows` × `maxLength` tokens and a step that
/// prefills the planned prompt chunks together (right-padded, logits of the last position only),
/// decodes one token for every planned sequence in one batched forward, samples all of them at once
/// (each with its own options), and applies stop ids and limits. TokenGenerator, BatchGenerator, the
/// server's scheduler, GRPO and evaluation all run on it; what differs between them is the plan.
public sealed class DecodeEngine : IDisposable
{
    private readonly KvCache _cache;
    private readonly DecodeSequence?[] _slots;
    private readonly Generator _shared;

    /// `seed`: the shared generator of sequences without a seed of their own (random when null).
    public DecodeEngine(CausalLM model, int rows, int maxLength, long? seed = null)
    {
        Model = model;
        MaxLength = Math.Min(maxLength, model.Config.MaxPositionEmbeddings);
        _cache = model.CreateCache(rows, MaxLength);
        _slots = new DecodeSequence?[rows];
        _shared = new Generator((ulong)(seed ?? Random.Shared.NextInt64()));
    }

    public CausalLM Model { get; }
    /// Tokens a sequence may hold, prompt and completion.
    public int MaxLength { get; }
    public int Rows => _slots.Length;
    public int FreeRows => _slots.Count(s => s is null);
    public KvCache Cache => _cache;
    public IEnumerable<DecodeSequence> Running => _slots.OfType<DecodeSequence>();

    /// Gives a sequence a cache row. A sequence allowed no new tokens finishes at once, without one.
    public void Admit(DecodeSequence sequence)
    {
        if (sequence.Slot >= 0 || sequence.Finished) throw new InvalidOperationException("the sequence is already admitted or finished");
        Model.CheckTokenIds(sequence.Prompt);
        if (sequence.Prompt.Length >= MaxLength)
            throw new PromptTooLongException(sequence.Prompt.Length, MaxLength - 1, atLeast: false);
        if (sequence.MaxNewTokens <= 0) { sequence.FinishReason = "length"; return; }
        var slot = Array.IndexOf(_slots, null);
        if (slot < 0) throw new InvalidOperationException("no free row in the decode engine");
        _slots[slot] = sequence;
        sequence.Slot = slot;
        _cache.Reset(slot);
    }

    /// Frees a sequence's row (a finished sequence's row is freed by the step that finished it).
    public void Release(DecodeSequence sequence)
    {
        if (sequence.Slot < 0) return;
        _slots[sequence.Slot] = null;
        sequence.Slot = -1;
    }

    public IReadOnlyList<StepResult> Step(StepPlan plan, ForwardTrace? trace = null)
    {
        if (plan.IsEmpty) return [];
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var threads = plan.Prefill.Count == 0 ? LibtorchThreads.ForDecoding() : null;
        var sampled = new List<DecodeSequence>();
        var logits = new List<Tensor>();
        if (plan.Prefill.Count > 0)
        {
            var (ready, last) = Prefill(plan.Prefill);
            sampled.AddRange(ready.Select(i => plan.Prefill[i].Sequence));
            if (ready.Count > 0) logits.Add(last.index_select(0, tensor(ready.Select(i => (long)i).ToArray(), device: last.device)));
        }
        if (plan.Decode.Count > 0)
        {
            foreach (var s in plan.Decode)
                if (s.Slot < 0 || s.Prefilling || s.Finished) throw new InvalidOperationException("only admitted, prefilled, unfinished sequences decode");
            var input = tensor(plan.Decode.Select(s => s.LastToken).ToArray(), device: Model.Device).view(plan.Decode.Count, 1);
            logits.Add(Model.Forward(input, _cache.Rows(plan.Decode.Select(s => s.Slot).ToArray()), trace: trace)[.., -1]);
            sampled.AddRange(plan.Decode);
        }
        if (sampled.Count == 0) return [];
        var rows = sampled.Select(s => new SamplingRow(s.Options, s.Seeded, s.Prompt, s.Generated)).ToList();
        var logprobs = new TokenLogprobs?[sampled.Count];
        var next = BatchSampler.Sample(logits.Count == 1 ? logits[0] : cat(logits, 0), rows, _shared, logprobs);
        var results = new StepResult[sampled.Count];
        for (int i = 0; i < sampled.Count; i++)
        {
            var s = sampled[i];
            if (!s.IgnoreEos && s.Options.StopTokenIds.Contains(next[i]))
            {
                s.StopToken = next[i];
                Finish(s, "stop");
                results[i] = new StepResult(s, null);
                continue;
            }
            s.Generated.Add(next[i]);
            if (s.Generated.Count >= s.MaxNewTokens || s.Length >= MaxLength) Finish(s, "length");
            results[i] = new StepResult(s, next[i], logprobs[i]);
        }
        return results;
    }

    /// The next chunk of each prefilling prompt in one right-padded forward; returns which rows completed
    /// their prompt and every row's last-position logits [n, V].
    private (List<int> Ready, Tensor Last) Prefill(IReadOnlyList<(DecodeSequence Sequence, int Tokens)> chunks)
    {
        var longest = chunks.Max(c => c.Tokens);
        var ids = new long[chunks.Count * longest];
        for (int r = 0; r < chunks.Count; r++)
        {
            var (s, n) = chunks[r];
            if (s.Slot < 0 || n < 1 || s.Prefilled + n > s.Prompt.Length) throw new InvalidOperationException("a prefill chunk must lie within an admitted sequence's prompt");
            Array.Copy(s.Prompt, s.Prefilled, ids, r * longest, n);
        }
        var view = _cache.Rows(chunks.Select(c => c.Sequence.Slot).ToArray());
        var last = Model.Forward(tensor(ids, device: Model.Device).view(chunks.Count, longest), view, chunks.Select(c => (long)c.Tokens).ToArray(), lastOnly: true).squeeze(1);
        var ready = new List<int>();
        for (int r = 0; r < chunks.Count; r++)
        {
            chunks[r].Sequence.Prefilled += chunks[r].Tokens;
            if (!chunks[r].Sequence.Prefilling) ready.Add(r);
        }
        return (ready, last);
    }

    private void Finish(DecodeSequence s, string reason)
    {
        s.FinishReason = reason;
        Release(s);
    }

    public void Dispose() => _cache.Dispose();
}
