using System.CommandLine;
using System.Text.Json;
using R1Sharp.Tokenization;

namespace R1Sharp.Cli.Commands;

public static class TokenizeCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "folder with tokenizer.json (and tokenizer_config.json)" };
        var text = new Option<string?>("--text") { Description = "text to encode: prints {\"ids\":[…]}" };
        var decode = new Option<string?>("--decode") { Description = "comma-separated ids to decode: prints {\"text\":\"…\"}" };
        var addSpecial = new Option<bool>("--add-special") { Description = "add the special tokens the tokenizer adds (e.g. BOS) when encoding" };
        var skipSpecial = new Option<bool>("--skip-special") { Description = "leave special tokens out when decoding" };
        var command = new Command("tokenize", "Encode text to ids or decode ids to text with a model folder's tokenizer.") { dir, text, decode, addSpecial, skipSpecial };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var (input, ids) = (parse.GetValue(text), parse.GetValue(decode));
            if ((input is null) == (ids is null)) throw new R1SharpException("give exactly one of --text or --decode");
            var tokenizer = PretrainedTokenizer.Load(parse.GetValue(dir)!);
            object result = input is not null
                ? new { ids = tokenizer.Encode(input, parse.GetValue(addSpecial)) }
                : new { text = tokenizer.Decode(CommandRunner.ParseIds(ids!, "--decode").Select(id => id is >= int.MinValue and <= int.MaxValue ? (int)id : throw new R1SharpException($"--decode: {id} is not a token id")), parse.GetValue(skipSpecial)) };
            Console.Out.WriteLine(JsonSerializer.Serialize(result, CommandRunner.ReadableJson));
            return 0;
        }));
        return command;
    }
}
