// Reference ids for TokenizerTests, from Hugging Face's own tokenizers library (npm `tokenizers`).
// Run: npm install tokenizers@0.23.2 && node make-goldens.mjs <references dir> (see .ci/fetch-references).
import { Tokenizer } from "tokenizers";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const refs = process.argv[2];
const { texts } = JSON.parse(fs.readFileSync(new URL("./texts.json", import.meta.url)));

// DeepSeek-R1's tokenizer is DeepSeek-V3's with two placeholders renamed (as TokenizerTests does).
function r1File() {
  const json = JSON.parse(fs.readFileSync(path.join(refs, "deepseek_v3", "tokenizer.json")));
  for (const t of json.added_tokens) {
    if (t.id === 128798) Object.assign(t, { content: "<think>", special: false, normalized: true });
    if (t.id === 128799) Object.assign(t, { content: "</think>", special: false, normalized: true });
  }
  const file = path.join(os.tmpdir(), "r1-tokenizer.json");
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

const files = {
  deepseek_v3: path.join(refs, "deepseek_v3", "tokenizer.json"),
  deepseek_r1: r1File(),
  qwen2_5: path.join(refs, "qwen2_5", "tokenizer.json"),
  llama3_1: path.join(refs, "llama3_1", "tokenizer.json"),
};
const out = {};
for (const [name, file] of Object.entries(files)) {
  const tok = Tokenizer.fromFile(file);
  const cases = [];
  for (const text of texts) {
    const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    cases.push({ ids, decoded: await tok.decode(ids, false), decoded_skip: await tok.decode(ids, true) });
  }
  out[name] = cases;
}
fs.writeFileSync(new URL("./goldens.json", import.meta.url), JSON.stringify(out) + "\n");
console.log(Object.keys(out).map(k => `${k}: ${out[k].length}`).join(", "));
