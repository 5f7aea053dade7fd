"""Tiny Qwen2 / Qwen3 / Llama checkpoints and their logits computed with transformers' definitions of these
architectures, written out independently in float64 numpy (DenseModelTests compares against them).
Run: /usr/bin/python3 make-reference.py   (Debian's python3-numpy)."""
import json, math, os, struct
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))

def save_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))

def inverse_frequencies(c, head_dim):
    inv = 1.0 / (c.get("rope_theta", 10000.0) ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    s = c.get("rope_scaling")
    kind = (s or {}).get("rope_type", (s or {}).get("type", "default"))
    if kind == "linear":
        inv = inv / s["factor"]
    elif kind == "llama3":
        factor, low, high, old = s["factor"], s["low_freq_factor"], s["high_freq_factor"], s["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        scaled = np.where(wavelen > old / low, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old / high) & (wavelen <= old / low)
        inv = np.where(medium, smoothed, scaled)
    return inv

def is_local(c, layer):
    # transformers: Qwen2 windows only with use_sliding_window, from layer max_window_layers on (default 28);
    # layer_types, when given, names each layer.
    if c.get("sliding_window") is None or (c["model_type"] in ("qwen2", "qwen3") and not c.get("use_sliding_window")):
        return False
    if "layer_types" in c:
        return c["layer_types"][layer] == "sliding_attention"
    return layer >= c.get("max_window_layers", 28 if c["model_type"] in ("qwen2", "qwen3") else 0)

def layer_mask(c, layer, T):
    # Written out element by element: query q sees key k if k <= q and, in a local layer,
    # k < num_sink_tokens or k is among the (sliding_window - num_sink_tokens) most recent positions.
    mask = np.full((T, T), -np.inf)
    for q in range(T):
        for k in range(q + 1):
            sinks = c.get("num_sink_tokens", 0)
            if not is_local(c, layer) or k > q - (c["sliding_window"] - sinks) or k < sinks:
                mask[q, k] = 0.0
    return mask

def forward(c, w, ids):
    h, heads, kv = c["hidden_size"], c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    d = c.get("head_dim") or h // heads
    eps = c["rms_norm_eps"]
    def lin(x, name, bias=False):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y
    def norm(x, name):
        return w[name] * (x / np.sqrt(np.mean(x * x, -1, keepdims=True) + eps))
    def rotate_half(x):
        return np.concatenate([-x[..., d // 2:], x[..., : d // 2]], -1)
    T = len(ids)
    angles = np.arange(T)[:, None] * inverse_frequencies(c, d)[None, :]
    emb = np.concatenate([angles, angles], -1)
    cos, sin = np.cos(emb)[None], np.sin(emb)[None]
    x = w["model.embed_tokens.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        mask = layer_mask(c, i, T)
        p = f"model.layers.{i}."
        a = norm(x, p + "input_layernorm.weight")
        q = lin(a, p + "self_attn.q_proj").reshape(T, heads, d).transpose(1, 0, 2)
        k = lin(a, p + "self_attn.k_proj").reshape(T, kv, d).transpose(1, 0, 2)
        v = lin(a, p + "self_attn.v_proj").reshape(T, kv, d).transpose(1, 0, 2)
        if c["model_type"] == "qwen3":   # Qwen3Attention: RMSNorm over each head's vector, before RoPE
            q, k = norm(q, p + "self_attn.q_norm.weight"), norm(k, p + "self_attn.k_norm.weight")
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = np.repeat(k, heads // kv, 0), np.repeat(v, heads // kv, 0)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d) + mask
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        x = x + lin((probs @ v).transpose(1, 0, 2).reshape(T, heads * d), p + "self_attn.o_proj")
        m = norm(x, p + "post_attention_layernorm.weight")
        g = lin(m, p + "mlp.gate_proj")
        x = x + lin(g / (1 + np.exp(-g)) * lin(m, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = norm(x, "model.norm.weight")
    head = w["model.embed_tokens.weight"] if c.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T

def build(name, config, seed):
    rng = np.random.default_rng(seed)
    c = config
    h, heads, kv, inter = c["hidden_size"], c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"]), c["intermediate_size"]
    d = c.get("head_dim") or h // heads
    qkv_bias = c["model_type"] == "qwen2" or c.get("attention_bias", False)
    o_bias = c["model_type"] in ("llama", "qwen3") and c.get("attention_bias", False)
    mlp_bias = c.get("mlp_bias", False)
    w = {"model.embed_tokens.weight": rng.normal(0, 0.5, (c["vocab_size"], h)), "model.norm.weight": 1 + rng.normal(0, 0.1, h)}
    if not c.get("tie_word_embeddings"):
        w["lm_head.weight"] = rng.normal(0, 0.3, (c["vocab_size"], h))
    def add(prefix, out_dim, in_dim, bias):
        w[prefix + ".weight"] = rng.normal(0, 0.3, (out_dim, in_dim))
        if bias:
            w[prefix + ".bias"] = rng.normal(0, 0.2, out_dim)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.1, h)
        w[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.1, h)
        add(p + "self_attn.q_proj", heads * d, h, qkv_bias)
        add(p + "self_attn.k_proj", kv * d, h, qkv_bias)
        add(p + "self_attn.v_proj", kv * d, h, qkv_bias)
        add(p + "self_attn.o_proj", h, heads * d, o_bias)
        if c["model_type"] == "qwen3":
            w[p + "self_attn.q_norm.weight"] = 1 + rng.normal(0, 0.2, d)
            w[p + "self_attn.k_norm.weight"] = 1 + rng.normal(0, 0.2, d)
        add(p + "mlp.gate_proj", inter, h, mlp_bias)
        add(p + "mlp.up_proj", inter, h, mlp_bias)
        add(p + "mlp.down_proj", h, inter, mlp_bias)
    w = {k: v.astype(np.float32) for k, v in w.items()}         # the checkpoint holds float32
    weights = {k: v.astype(np.float64) for k, v in w.items()}   # the reference computes in float64
    out = os.path.join(here, name)
    os.makedirs(out, exist_ok=True)
    json.dump(c, open(os.path.join(out, "config.json"), "w"), indent=1)
    save_safetensors(os.path.join(out, "model.safetensors"), w)
    ids = [int(i) for i in rng.integers(0, c["vocab_size"], 24)]
    logits = forward(c, weights, np.array(ids))
    greedy = list(ids[:6])
    for _ in range(10):
        greedy.append(int(forward(c, weights, np.array(greedy))[-1].argmax()))
    json.dump({"ids": ids, "logits": np.round(logits, 7).tolist(), "greedy_prompt": ids[:6], "greedy_continuation": greedy[6:]},
              open(os.path.join(out, "reference.json"), "w"))
    print(name, "max |logit|", float(np.abs(logits).max()))

common = {"vocab_size": 96, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
          "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2}
build("qwen2", {"model_type": "qwen2", **common, "num_key_value_heads": 2, "rope_theta": 10000.0, "tie_word_embeddings": True,
                "use_sliding_window": False, "sliding_window": 32, "max_window_layers": 2}, 1)
build("llama3", {"model_type": "llama", **common, "num_key_value_heads": 1, "rope_theta": 500000.0, "tie_word_embeddings": False,
                 "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}, 2)
build("qwen2-swa", {"model_type": "qwen2", **common, "num_key_value_heads": 2, "rope_theta": 10000.0, "tie_word_embeddings": True,
                   "use_sliding_window": True, "sliding_window": 5, "max_window_layers": 1}, 4)
build("llama-local-global", {"model_type": "llama", **common, "num_hidden_layers": 3, "num_key_value_heads": 2, "rope_theta": 10000.0,
                             "sliding_window": 5, "num_sink_tokens": 2,
                             "layer_types": ["sliding_attention", "full_attention", "sliding_attention"]}, 5)
build("llama-linear", {"model_type": "llama", **common, "num_key_value_heads": 4, "head_dim": 12, "rope_theta": 10000.0,
                       "attention_bias": True, "mlp_bias": True, "rope_scaling": {"type": "linear", "factor": 2.0}}, 3)
build("qwen3", {"model_type": "qwen3", **common, "num_key_value_heads": 2, "head_dim": 16, "rope_theta": 1000000.0, "tie_word_embeddings": True,
                "attention_bias": False, "use_sliding_window": False, "sliding_window": 8, "max_window_layers": 1}, 6)
build("qwen3-bias", {"model_type": "qwen3", **common, "num_key_value_heads": 1, "rope_theta": 10000.0, "tie_word_embeddings": False,
                     "attention_bias": True}, 7)
