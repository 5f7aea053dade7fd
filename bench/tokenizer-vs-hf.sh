#!/usr/bin/env bash
# R1Sharp's tokenizer side by side with Hugging Face's Rust tokenizers (npm `tokenizers`, the reference
# the tests compare ids with), on the same texts in one run: long runs of letters (one pre-token each,
# the case BPE merging must not make quadratic) and the built-in multilingual text.
# Usage: bench/tokenizer-vs-hf.sh TOKENIZER_DIR   (prints one JSON line per text)
set -euo pipefail
dir=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null && npm install -q tokenizers@0.23.2 >/dev/null 2>&1)
node -e '
const fs = require("fs"); let x = 12345;
const letters = n => { let s = ""; for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) % 2147483648; s += String.fromCharCode(97 + (x >> 16) % 26); } return s; };
fs.writeFileSync(process.argv[1] + "/run-100k.txt", letters(100000));
fs.writeFileSync(process.argv[1] + "/run-400k.txt", letters(400000));
fs.writeFileSync(process.argv[1] + "/a-400k.txt", "a".repeat(400000));' "$work"
cat > "$work/hf.mjs" <<'JS'
import { Tokenizer } from "tokenizers";
import fs from "node:fs";
const tok = Tokenizer.fromFile(process.argv[2] + "/tokenizer.json");
const text = fs.readFileSync(process.argv[3], "utf8");
let t = process.hrtime.bigint();
const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
const first = Number(process.hrtime.bigint() - t) / 1e9;
t = process.hrtime.bigint();
await tok.encode(text, null, { addSpecialTokens: false });
console.log(JSON.stringify({ tokens: ids.length, first_s: first, warm_s: Number(process.hrtime.bigint() - t) / 1e9 }));
JS
cli=(dotnet run -c Release --project "$top/src/R1Sharp.Cli" --)
"${cli[@]}" --help >/dev/null   # build once outside the timings
for name in run-100k run-400k a-400k; do
  ours=$("${cli[@]}" bench tokenizer "$dir" --file "$work/$name.txt")
  hf=$(cd "$work" && node hf.mjs "$dir" "$work/$name.txt")
  node -e '
const [name, o, h] = [process.argv[1], JSON.parse(process.argv[2]), JSON.parse(process.argv[3])];
const s = (mbps) => o.bytes / 1e6 / mbps;
console.log(JSON.stringify({ text: name, bytes: o.bytes, same_token_count: o.tokens === h.tokens,
  r1sharp_first_s: +s(o.encode_mb_per_s_first_pass).toFixed(4), r1sharp_warm_s: +s(o.encode_mb_per_s).toFixed(4),
  hf_first_s: +h.first_s.toFixed(4), hf_warm_s: +h.warm_s.toFixed(4),
  warm_ratio_r1sharp_over_hf: +(s(o.encode_mb_per_s) / h.warm_s).toFixed(2), first_ratio_r1sharp_over_hf: +(s(o.encode_mb_per_s_first_pass) / h.first_s).toFixed(2) }));' "$name" "$ours" "$hf"
done
