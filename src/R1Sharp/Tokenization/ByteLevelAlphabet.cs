namespace R1Sharp.Tokenization;

/// GPT-2's byte-to-unicode table, used by every byte-level BPE vocabulary: printable bytes stand for
/// themselves, the others are shifted to U+0100 and up so that no token contains a space or control.
public static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = Build();
    private static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, b) => (c, b)).ToDictionary(p => p.c, p => (byte)p.b);

    private static char[] Build()
    {
        static bool Printable(int b) => b is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ';
        var map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++) map[b] = Printable(b) ? (char)b : (char)(256 + next++);
        return map;
    }

    /// The token's bytes, or null when a character is not in the alphabet (Hugging Face then keeps the
    /// token's own UTF-8 bytes).
    public static byte[]? Bytes(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            if (!CharToByte.TryGetValue(token[i], out var b)) return null;
            bytes[i] = b;
        }
        return bytes;
    }
}
