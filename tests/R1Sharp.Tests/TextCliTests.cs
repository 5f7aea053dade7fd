using System.Diagnostics;
using System.Text.Json;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests;

/// `tokenize`, `chat-template`, `generate --prompt` and `chat`, run as a user would.
public class TextCliTests
{
    private static readonly Lazy<string> Folder = new(() => TinyChatModels.Create("llama"));

    private static void AssertUserError((int Code, string Stdout, string Stderr) result, string message)
    {
        Assert.Equal(2, result.Code);
        Assert.Contains(message, result.Stderr);
        Assert.Single(result.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public void TokenizeEncodesAndDecodesWithTheRealTokenizer()
    {
        var dir = TestPaths.ReferenceTokenizer("deepseek_v3");
        var tokenizer = ReferenceTokenizers.Get("deepseek_v3");
        var encoded = CliTests.Run("tokenize", dir, "--text", "深度求索 R1 🤗", "--add-special");
        Assert.True(encoded.Code == 0, encoded.Stderr);
        var ids = JsonDocument.Parse(encoded.Stdout).RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(tokenizer.Encode("深度求索 R1 🤗", addSpecialTokens: true), ids);
        var decoded = CliTests.Run("tokenize", dir, "--decode", string.Join(",", ids), "--skip-special");
        Assert.Equal("深度求索 R1 🤗", JsonDocument.Parse(decoded.Stdout).RootElement.GetProperty("text").GetString());
        AssertUserError(CliTests.Run("tokenize", dir), "exactly one of --text or --decode");
        AssertUserError(CliTests.Run("tokenize", TestPaths.TempDir(), "--text", "x"), "no tokenizer.json");
        AssertUserError(CliTests.Run("tokenize", dir, "--decode", "1,x"), "'x' is not an integer token id");
    }

    [Fact]
    public void ChatTemplateRendersAndTokenizes()
    {
        var messages = Path.Combine(TestPaths.TempDir(), "messages.json");
        File.WriteAllText(messages, """[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]""");
        var result = CliTests.Run("chat-template", TestPaths.ReferenceTokenizer("qwen2_5"), "--messages", messages, "--add-generation-prompt");
        Assert.True(result.Code == 0, result.Stderr);
        var root = JsonDocument.Parse(result.Stdout).RootElement;
        var text = root.GetProperty("text").GetString()!;
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n", text);
        Assert.Equal(ReferenceTokenizers.Get("qwen2_5").Encode(text), root.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
        File.WriteAllText(messages, """[{"content": "no role"}]""");
        AssertUserError(CliTests.Run("chat-template", TestPaths.ReferenceTokenizer("qwen2_5"), "--messages", messages), "message 0 needs a string \"role\"");
        File.WriteAllText(messages, "[{");
        AssertUserError(CliTests.Run("chat-template", TestPaths.ReferenceTokenizer("qwen2_5"), "--messages", messages), "not valid JSON");
    }

    [Fact]
    public void GenerateStreamsTextAndPrintsJson()
    {
        var json = CliTests.Run("generate", Folder.Value, "--prompt", "What is 2+2?", "--chat", "--max-new-tokens", "12", "--seed", "3", "--temperature", "0.8", "--json");
        Assert.True(json.Code == 0, json.Stderr);
        var root = JsonDocument.Parse(json.Stdout).RootElement;
        var ids = root.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(12, ids.Length);
        var text = ByteTokenizer.Instance.Decode(ids.Select(i => (long)i));
        Assert.Equal(text, root.GetProperty("reasoning").GetString() + root.GetProperty("content").GetString());
        var again = CliTests.Run("generate", Folder.Value, "--prompt", "What is 2+2?", "--chat", "--max-new-tokens", "12", "--seed", "3", "--temperature", "0.8", "--json");
        Assert.Equal(json.Stdout, again.Stdout);

        var streamed = CliTests.Run("generate", Folder.Value, "--prompt", "What is 2+2?", "--chat", "--max-new-tokens", "12", "--seed", "3", "--temperature", "0.8");
        Assert.True(streamed.Code == 0, streamed.Stderr);
        Assert.Equal(root.GetProperty("content").GetString()!.Trim(), streamed.Stdout.Trim());

        AssertUserError(CliTests.Run("generate", Folder.Value, "--prompt", "  "), "the prompt is empty");
        AssertUserError(CliTests.Run("generate", Folder.Value, "--prompt", new string('x', 200)), "context is 96");
        AssertUserError(CliTests.Run("generate", Folder.Value, "--prompt", "x", "--top-p", "0"), "top_p must be in (0, 1]");
        AssertUserError(CliTests.Run("generate", Folder.Value), "exactly one of --prompt or --ids");
    }

    [Fact]
    public void ChatKeepsTheConversationAndResets()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"), "chat", Folder.Value, "--greedy", "--max-new-tokens", "8" }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        process.StandardInput.Write("hello\nand again\n/reset\nhello\n/exit\n");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, stderr);
        var replies = stdout.Split("r1> ").Skip(1).Select(r => r[..r.IndexOf(" tokens, ", StringComparison.Ordinal)]).ToArray();
        Assert.Equal(3, replies.Length);
        Assert.Equal(replies[0], replies[2]);          // after /reset the same first turn gives the same greedy answer
        Assert.Contains("(conversation cleared)", stdout);
        Assert.Contains("(8 tokens", stdout);
    }
}
