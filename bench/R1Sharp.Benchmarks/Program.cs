using System.CommandLine;
using LLama.Native;
using R1Sharp;
using R1Sharp.Benchmarks;

// Benchmarks beside the product (not shipped in the CLI): each prints JSON figures.
NativeRuntime.Configure();
var root = new RootCommand("R1Sharp benchmarks that need peers (llama.cpp through LLamaSharp 0.30.0).");

var dir = new Argument<string>("DIR") { Description = "Hugging Face model folder (qwen2, qwen3, llama, deepseek_v2/v3)" };
var formats = new Option<string>("--formats") { Description = "f32, 8bit (R1Sharp int8 or fp8 vs q8_0), 4bit (int4 vs q4_0)", DefaultValueFactory = _ => "f32,8bit,4bit" };
var eight = new Option<string>("--eight-bit") { Description = "R1Sharp's 8-bit format: int8 or fp8", DefaultValueFactory = _ => "int8" };
var prompt = new Option<int>("--prompt") { Description = "prompt tokens", DefaultValueFactory = _ => 128 };
var steps = new Option<int>("--steps") { Description = "decode steps per round", DefaultValueFactory = _ => 128 };
var rounds = new Option<int>("--rounds") { Description = "alternating rounds (median taken)", DefaultValueFactory = _ => 3 };
var threads = new Option<int>("--threads") { Description = "threads for llama.cpp (R1Sharp uses the machine's cores)", DefaultValueFactory = _ => Environment.ProcessorCount };
var build = new Option<string>("--build") { Description = "llama.cpp build: avx2 (as the issue compares) or avx512", DefaultValueFactory = _ => "avx2" };
var decode = new Command("decode", "R1Sharp vs llama.cpp decode on the same weights, alternating: tokens/s, ratios, bandwidth bound.")
    { dir, formats, eight, prompt, steps, rounds, threads, build };
decode.SetAction(parse =>
{
    LlamaCpp.UseBuild(parse.GetValue(build) == "avx512" ? AvxLevel.Avx512 : AvxLevel.Avx2);
    var result = DecodeSideBySide.Run(new DecodeSideBySide.Options(parse.GetValue(dir)!, parse.GetValue(formats)!.Split(','), parse.GetValue(eight)!,
        parse.GetValue(prompt), parse.GetValue(steps), parse.GetValue(rounds), parse.GetValue(threads), parse.GetValue(build)!));
    Console.WriteLine(result.ToJsonString());
    return 0;
});
root.Subcommands.Add(decode);
return root.Parse(args).Invoke();
