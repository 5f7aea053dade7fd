using R1Sharp.Tokenization;

namespace R1Sharp.Training.Data;

/// A tokenised document and which of its tokens carry loss (1) or only context (0).
public sealed record Document(int[] Tokens, byte[] LossMask)
{
    /// Plain text: every token after <|bos|> is learned, ending with <|eos|>.
    public static Document FromText(string text)
    {
        var ids = ByteTokenizer.Instance.Encode(text);
        int[] tokens = [ByteTokenizer.Bos, .. ids, ByteTokenizer.Eos];
        var mask = Enumerable.Repeat((byte)1, tokens.Length).ToArray();
        mask[0] = 0;
        return new Document(tokens, mask);
    }

    /// Chat: `<|bos|><|user|>…<|assistant|>…<|eos|>` per turn pair; loss only on assistant tokens and their <|eos|>.
    public static Document FromMessages(IReadOnlyList<(string Role, string Content)> messages)
    {
        var tokens = new List<int> { ByteTokenizer.Bos };
        var mask = new List<byte> { 0 };
        foreach (var (role, content) in messages)
        {
            var marker = role switch
            {
                "user" or "system" => ByteTokenizer.User,
                "assistant" => ByteTokenizer.Assistant,
                _ => throw new R1SharpException($"unknown chat role '{role}' (system, user, assistant)"),
            };
            var ids = ByteTokenizer.Instance.Encode(content);
            var learned = role == "assistant" ? (byte)1 : (byte)0;
            tokens.Add(marker);
            mask.Add(0);
            tokens.AddRange(ids);
            mask.AddRange(Enumerable.Repeat(learned, ids.Length));
            if (role == "assistant")
            {
                tokens.Add(ByteTokenizer.Eos);
                mask.Add(1);
            }
        }
        return new Document([.. tokens], [.. mask]);
    }

    /// The prompt side of a chat, ready for the model to continue as the assistant.
    public static int[] Prompt(string userContent) =>
        [ByteTokenizer.Bos, ByteTokenizer.User, .. ByteTokenizer.Instance.Encode(userContent), ByteTokenizer.Assistant];
}
