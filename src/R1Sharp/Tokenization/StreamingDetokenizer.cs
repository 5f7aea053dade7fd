using System.Text;

namespace R1Sharp.Tokenization;

/// Turns generated ids into text as they arrive, holding back the bytes of a UTF-8 character until
/// it is complete (a token may end in the middle of one). Ids the tokenizer does not know add nothing.
public sealed class StreamingDetokenizer(PretrainedTokenizer tokenizer, bool skipSpecialTokens = false)
{
    private readonly List<byte> _pending = [];

    /// The text that `id` completes (possibly empty).
    public string Add(int id)
    {
        tokenizer.AppendBytes(id, skipSpecialTokens, _pending, strict: false);
        var complete = CompleteLength(_pending);
        if (complete == 0) return "";
        var text = Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending)[..complete]);
        _pending.RemoveRange(0, complete);
        return text;
    }

    /// Whatever is left (an unfinished character becomes U+FFFD).
    public string Flush()
    {
        var text = Encoding.UTF8.GetString(_pending.ToArray());
        _pending.Clear();
        return text;
    }

    /// Length of the prefix that does not end inside a (so far valid) multi-byte sequence.
    private static int CompleteLength(List<byte> bytes)
    {
        for (int back = 1; back <= Math.Min(3, bytes.Count); back++)
        {
            var b = bytes[^back];
            if ((b & 0xC0) == 0x80) continue;                     // continuation byte: keep looking for the lead
            int needed = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
            return needed > back && b >= 0xC0 && b < 0xF8 ? bytes.Count - back : bytes.Count;
        }
        return bytes.Count;
    }
}
