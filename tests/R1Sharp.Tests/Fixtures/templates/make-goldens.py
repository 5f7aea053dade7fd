"""Reference renderings for ChatTemplateTests with Jinja2 set up as transformers' apply_chat_template
sets it up (sandboxed, trim_blocks, lstrip_blocks, loopcontrols, tojson with ensure_ascii=False,
raise_exception, strftime_now). Run: python3 make-goldens.py <references dir>  (needs jinja2)."""
import json, os, sys
from datetime import datetime
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.ext import loopcontrols

here = os.path.dirname(os.path.abspath(__file__))
refs = sys.argv[1]
spec = json.load(open(os.path.join(here, "cases.json"), encoding="utf-8"))

def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda f: datetime.now().strftime(f)

def token(v):
    return v.get("content") if isinstance(v, dict) else v

def r1_template(v3):
    # DeepSeek-R1's template is V3's with earlier reasoning dropped from assistant turns and the
    # generation prompt opening <think> (the same derivation ChatTemplateTests applies).
    old_turn = "{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}"
    new_turn = ("{% set content = message['content'] %}{% if '</think>' in content %}"
                "{% set content = content.split('</think>')[-1] %}{% endif %}"
                "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}")
    old_prompt = "{{'<｜Assistant｜>'}}{% endif %}"
    assert old_turn in v3 and v3.endswith(old_prompt)
    return v3.replace(old_turn, new_turn)[: -len(old_prompt)] + "{{'<｜Assistant｜><think>\\n'}}{% endif %}"

families = {}
for name, folder in [("deepseek_v3", "deepseek_v3"), ("qwen2_5", "qwen2_5"), ("qwen3", "qwen3"), ("llama3_1", "llama3_1")]:
    config = json.load(open(os.path.join(refs, folder, "tokenizer_config.json"), encoding="utf-8"))
    families[name] = (config["chat_template"], config)
families["deepseek_r1"] = (r1_template(families["deepseek_v3"][0]), families["deepseek_v3"][1])

out = {}
for name, (template, config) in families.items():
    compiled = env.from_string(template)
    specials = {k: token(config.get(k)) for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    for case in spec["cases"]:
        if "families" in case and name not in case["families"]:
            continue
        out[f"{name}/{case['name']}"] = compiled.render(messages=case["messages"], tools=case.get("tools"), documents=None,
                                                        add_generation_prompt=case["add_generation_prompt"], **specials)
for name, template in spec["mini_templates"].items():
    out[f"mini/{name}"] = env.from_string(template).render(messages=spec["cases"][2]["messages"] + spec["cases"][1]["messages"])
json.dump(out, open(os.path.join(here, "goldens.json"), "w", encoding="utf-8"), ensure_ascii=False, indent=1)
print(len(out), "renderings")
