#!/usr/bin/env bash
# The R1 recipe on a Qwen2-architecture model with the real Qwen2.5 tokenizer and chat template:
# a small random model (configs/qwen2-tiny.json; its 151,936-token vocabulary is most of its 10M
# parameters), SFT on <think> traces of two-digit sums and differences through the template,
# held-out pass@1, GRPO, pass@1 again (28 minutes on 2 cores). At this size the model does not learn
# two-digit arithmetic (pass@1 1.25% -> 0.5%): see the README; a real model folder is what this is for.
# Needs the Qwen2.5 tokenizer files in .cache/references/qwen2_5 (bash .ci/fetch-references).
# With a real model folder instead: r1sharp reproduce --model DIR [--sft-steps 0] …
set -euo pipefail
cd "$(dirname "$0")/.."
cli=(dotnet run -c Release --project src/R1Sharp.Cli --)
"${cli[@]}" init --config configs/qwen2-tiny.json --out runs/qwen2-tiny --seed 1 --tokenizer .cache/references/qwen2_5
"${cli[@]}" reproduce --model runs/qwen2-tiny --difficulty 2 --sft-steps 300 --sft-batch 4 --sft-seq-len 128 --grpo-steps 40 --grpo-prompts 4 --n-test 100 --out runs/reproduce-qwen2-tiny "$@"
