using System.Text;
using System.Text.Json.Nodes;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests;

/// Ids and decoding of the real DeepSeek-V3/R1, Qwen2.5 and Llama-3.1 tokenizers against reference
/// outputs of Hugging Face's tokenizers library (Fixtures/tokenizers/make-goldens.mjs).
public class TokenizerTests
{
    private static readonly string[] Texts = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "tokenizers", "texts.json")))!["texts"]!
        .AsArray().Select(t => (string)t!).ToArray();
    private static readonly JsonObject Goldens = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "tokenizers", "goldens.json")))!.AsObject();

    [Theory]
    [InlineData("deepseek_v3")]
    [InlineData("deepseek_r1")]
    [InlineData("qwen2_5")]
    [InlineData("llama3_1")]
    public void IdsAndDecodingEqualHuggingFace(string name)
    {
        var tokenizer = ReferenceTokenizers.Get(name);
        var cases = Goldens[name]!.AsArray();
        Assert.Equal(Texts.Length, cases.Count);
        for (int i = 0; i < Texts.Length; i++)
        {
            var expected = cases[i]!["ids"]!.AsArray().Select(x => (int)x!).ToArray();
            var ids = tokenizer.Encode(Texts[i]);
            Assert.True(expected.SequenceEqual(ids), $"{name} text {i} ({Texts[i][..Math.Min(30, Texts[i].Length)]}): expected [{string.Join(",", expected)}] got [{string.Join(",", ids)}]");
            Assert.Equal((string)cases[i]!["decoded"]!, tokenizer.Decode(ids, cleanUpSpaces: false));
            Assert.Equal((string)cases[i]!["decoded_skip"]!, tokenizer.Decode(ids, skipSpecialTokens: true, cleanUpSpaces: false));
        }
    }

    [Fact]
    public void DeepSeekDecodeOfEncodeIsTheText()
    {
        var tokenizer = ReferenceTokenizers.Get("deepseek_v3");
        foreach (var text in Texts) Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
    }

    [Fact]
    public void SpecialTokensAreAddedAsEachModelConfiguresThem()
    {
        var deepSeek = ReferenceTokenizers.Get("deepseek_v3");   // tokenizer_config: add_bos_token
        Assert.Equal([0, .. deepSeek.Encode("Hi")], deepSeek.Encode("Hi", addSpecialTokens: true));
        var llama = ReferenceTokenizers.Get("llama3_1");         // post_processor template
        Assert.Equal([128000, .. llama.Encode("Hi")], llama.Encode("Hi", addSpecialTokens: true));
        var qwen = ReferenceTokenizers.Get("qwen2_5");           // nothing
        Assert.Equal(qwen.Encode("Hi"), qwen.Encode("Hi", addSpecialTokens: true));
        var r1 = ReferenceTokenizers.Get("deepseek_r1");
        Assert.Equal([128798], r1.Encode("<think>"));
        Assert.Equal("<think>ok", r1.Decode(r1.Encode("<think>ok"), skipSpecialTokens: true));
        Assert.Equal(1, deepSeek.EosId);
    }

    [Fact]
    public void StreamingNeverEmitsHalfACharacter()
    {
        var tokenizer = ReferenceTokenizers.Get("deepseek_v3");
        foreach (var text in Texts)
        {
            var stream = new StreamingDetokenizer(tokenizer);
            var output = new StringBuilder();
            foreach (var id in tokenizer.Encode(text))
            {
                var piece = stream.Add(id);
                Assert.DoesNotContain('\uFFFD', piece);
                Assert.False(piece.Length > 0 && char.IsHighSurrogate(piece[^1]), "a chunk ends inside a surrogate pair");
                output.Append(piece);
            }
            output.Append(stream.Flush());
            Assert.Equal(text, output.ToString());
        }
    }

    [Fact]
    public void BadFilesGiveOneClearError()
    {
        var empty = TestPaths.TempDir();
        Assert.Contains("no tokenizer.json", Assert.Throws<R1SharpException>(() => PretrainedTokenizer.Load(empty)).Message);
        File.WriteAllText(Path.Combine(empty, "tokenizer.json"), "{\"model\": {\"vocab\": ");
        Assert.Contains("not valid JSON", Assert.Throws<R1SharpException>(() => PretrainedTokenizer.Load(empty)).Message);
        File.WriteAllText(Path.Combine(empty, "tokenizer.json"), "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
        Assert.Contains("Unigram is not supported", Assert.Throws<R1SharpException>(() => PretrainedTokenizer.Load(empty)).Message);
        File.WriteAllText(Path.Combine(empty, "tokenizer.json"), "{\"added_tokens\": []}");
        Assert.Contains("not a Hugging Face tokenizer file", Assert.Throws<R1SharpException>(() => PretrainedTokenizer.Load(empty)).Message);
        Assert.Contains("not in the tokenizer's vocabulary", Assert.Throws<R1SharpException>(() => ReferenceTokenizers.Get("qwen2_5").Decode([int.MaxValue])).Message);
    }
}
