#!/usr/bin/env python3
"""Make a GLM-4-9B-shaped (Glm4ForCausalLM) model with random BF16 weights, and transformers'
greedy continuation on those same weights, for the CUDA backend's full-size check.
Owned by gpuval.

Run on the GPU machine by scripts/gpu_check.sh (not part of CI; the output is never
committed). Needs torch and transformers; the weights are initialised by transformers itself
(normal(0, 0.02) matrices, unit norms) directly on the GPU in BF16 and saved as safetensors
shards with save_pretrained. The reference is then computed from those same weights:

  1. fp32: the model upcast to fp32 (exact; 37.6 GB for 40 layers), eager attention, TF32 off,
     greedy-decodes 16 tokens from a fixed prompt with a KV cache: greedy_ids, their fp32 top-2
     margins and the fp32 logits of each position (kept in memory);
  2. bf16: the model cast back to BF16 (exact, the checkpoint's own values), teacher-forced on
     the prompt + the fp32 continuation in one pass: its argmax at each position, its top-2
     margin, and by how much BF16 moves the fp32 top-2 margin (margin_shift).

tie_epsilon = max(1.5 x the largest margin_shift, 2^-6): a position whose fp32 margin is below
it may flip in BF16 (transformers' own BF16 moves margins that far), so gpu_check.sh reports a
disagreement there as a tie; every other position must agree. Without torch/transformers it
still writes the model (numpy only: uniform weights of the same std, unit norms, zero biases,
safetensors written by hand) and says that no reference was made (exit code 3). Writes
OUT/config.json, OUT/model-*.safetensors, OUT/model.safetensors.index.json and
OUT/reference_greedy.json (format 2: prompt_ids, greedy_ids, margins, tie_epsilon, bf16 {...}).
Usage:

    python3 scripts/make_glm9b_random.py OUT [--layers 40] [--tokens 16] [--seed 0]
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

# GLM-4-9B-0414's shape: 40 layers of 204.0 M parameters, a 620.8 M lm_head, and as large an
# embedding: about 9.4 B parameters, 18.8 GB in BF16.
SHAPE = dict(
    hidden_size=4096,
    num_hidden_layers=40,
    num_attention_heads=32,
    num_key_value_heads=2,
    head_dim=128,
    intermediate_size=13696,
    vocab_size=151552,
    max_position_embeddings=32768,
    partial_rotary_factor=0.5,
    attention_bias=True,
    tie_word_embeddings=False,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    pad_token_id=151329,
    eos_token_id=[151329, 151336, 151338],
)
PROMPT_IDS = [151331, 151333, 872, 198, 9703, 11, 1879, 0, 3838, 374, 220, 17, 10, 17, 30, 151337]


def param_bytes(shape: dict) -> int:
    h, i, v = shape["hidden_size"], shape["intermediate_size"], shape["vocab_size"]
    q = shape["num_attention_heads"] * shape["head_dim"]
    kv = shape["num_key_value_heads"] * shape["head_dim"]
    layer = h * (q + 2 * kv) + (q + 2 * kv) + q * h + h * 2 * i + i * h + 4 * h
    return 2 * (shape["num_hidden_layers"] * layer + 2 * v * h + h)


def tensor_shapes(shape: dict):
    """(name, shape, kind) of every Glm4ForCausalLM tensor; kind: matrix, norm or bias."""
    h, i, v = shape["hidden_size"], shape["intermediate_size"], shape["vocab_size"]
    q = shape["num_attention_heads"] * shape["head_dim"]
    kv = shape["num_key_value_heads"] * shape["head_dim"]
    yield "model.embed_tokens.weight", [v, h], "matrix"
    for n in range(shape["num_hidden_layers"]):
        p = f"model.layers.{n}."
        for norm in ("input_layernorm", "post_self_attn_layernorm", "post_attention_layernorm",
                     "post_mlp_layernorm"):
            yield p + norm + ".weight", [h], "norm"
        for proj, rows in (("q_proj", q), ("k_proj", kv), ("v_proj", kv)):
            yield p + f"self_attn.{proj}.weight", [rows, h], "matrix"
            yield p + f"self_attn.{proj}.bias", [rows], "bias"
        yield p + "self_attn.o_proj.weight", [h, q], "matrix"
        yield p + "mlp.gate_up_proj.weight", [2 * i, h], "matrix"
        yield p + "mlp.down_proj.weight", [h, i], "matrix"
    yield "model.norm.weight", [h], "norm"
    yield "lm_head.weight", [v, h], "matrix"


def write_numpy_model(out: Path, shape: dict, seed: int) -> None:
    """The model without torch: BF16 bits from uniform fp32 of std 0.02, ~5 GB shards."""
    import numpy as np

    rng = np.random.default_rng(seed)
    bound = 0.02 * 3**0.5  # uniform(-b, b) has std b / sqrt(3)
    shards, current, size = [], [], 0
    for name, dims, kind in tensor_shapes(shape):
        current.append((name, dims, kind))
        size += 2 * int(np.prod(dims))
        if size > 5 * 2**30:
            shards.append(current)
            current, size = [], 0
    if current:
        shards.append(current)
    weight_map = {}
    for k, shard in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        header, offset = {}, 0
        for name, dims, _ in shard:
            n = 2 * int(np.prod(dims))
            header[name] = {"dtype": "BF16", "shape": dims, "data_offsets": [offset, offset + n]}
            offset += n
            weight_map[name] = fname
        blob = json.dumps(header).encode()
        blob += b" " * (-len(blob) % 8)
        with open(out / fname, "wb") as f:
            f.write(len(blob).to_bytes(8, "little") + blob)
            for name, dims, kind in shard:
                count = int(np.prod(dims))
                if kind == "norm":
                    f.write(np.full(count, 0x3F80, dtype=np.uint16).tobytes())  # 1.0
                elif kind == "bias":
                    f.write(np.zeros(count, dtype=np.uint16).tobytes())
                else:
                    for first in range(0, count, 1 << 26):
                        x = rng.random(min(1 << 26, count - first), dtype=np.float32)
                        x = (x * (2 * bound) - bound).astype(np.float32)
                        f.write((x.view(np.uint32) >> 16).astype(np.uint16).tobytes())
    total = sum(2 * int(np.prod(d)) for _, d, _ in tensor_shapes(shape))
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    config = dict(shape, architectures=["Glm4ForCausalLM"], model_type="glm4",
                  hidden_act="silu", torch_dtype="bfloat16", initializer_range=0.02)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=SHAPE["num_hidden_layers"])
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda", help="cpu only for a smoke test of the script")
    args = ap.parse_args()
    shape = dict(SHAPE, num_hidden_layers=args.layers)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    need = param_bytes(shape)
    free = shutil.disk_usage(out).free
    if free < need * 1.1:
        print(f"make_glm9b_random: {need / 2**30:.1f} GiB needed, {free / 2**30:.1f} GiB free "
              f"under {out}", file=sys.stderr)
        return 4
    why = ""
    try:
        import torch
        import transformers
        if args.device == "cuda" and not torch.cuda.is_available():
            why = "torch sees no CUDA GPU"
    except ImportError as e:
        why = f"torch/transformers absent ({e})"
    if why:
        write_numpy_model(out, shape, args.seed)
        print(f"make_glm9b_random: wrote {need / 2**30:.1f} GiB with numpy; NO transformers "
              f"reference: {why}", file=sys.stderr)
        return 3

    t0 = time.time()
    torch.manual_seed(args.seed)
    config = transformers.Glm4Config(**shape, attn_implementation="eager")
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(args.device):
        model = transformers.Glm4ForCausalLM(config).eval()
    torch.set_default_dtype(torch.float32)
    t_init = time.time() - t0
    model.save_pretrained(out, max_shard_size="5GB", safe_serialization=True)
    t_save = time.time() - t0 - t_init
    ref = reference(model, args.tokens, args.device)
    ref.update(torch=torch.__version__, transformers=transformers.__version__,
               layers=args.layers)
    (out / "reference_greedy.json").write_text(json.dumps(ref) + "\n")
    print(f"make_glm9b_random: {need / 2**30:.1f} GiB of BF16 weights in {out} "
          f"(init {t_init:.1f} s, save {t_save:.1f} s, reference {ref['reference_s']:.1f} s); "
          f"fp32 greedy {ref['greedy_ids']}, margins {ref['margins']}; transformers BF16 "
          f"teacher-forced agrees at {ref['bf16']['agree']} of {args.tokens}; tie_epsilon "
          f"{ref['tie_epsilon']:.4f}")
    return 0


def reference(model, tokens: int, device: str) -> dict:
    """fp32 greedy continuation of the model's own BF16 weights, and BF16's view of it."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    t0 = time.time()
    model.float()  # every BF16 value is exact in fp32
    greedy, margins, seconds, rows = [], [], [], []
    with torch.no_grad():
        res = model(torch.tensor([PROMPT_IDS], device=device), use_cache=True)
        for _ in range(tokens):
            rows.append(res.logits[0, -1].float())
            top = torch.topk(rows[-1], 2)
            greedy.append(int(top.indices[0]))
            seconds.append(int(top.indices[1]))
            margins.append(float(top.values[0] - top.values[1]))
            nxt = torch.tensor([[greedy[-1]]], device=device)
            res = model(nxt, past_key_values=res.past_key_values, use_cache=True)
        del res
        fp32 = torch.stack(rows)
        model.to(torch.bfloat16)  # back to the checkpoint's exact values
        seq = torch.tensor([PROMPT_IDS + greedy[:-1]], device=device)
        bf16 = model(seq).logits[0, len(PROMPT_IDS) - 1:].float()
    idx = torch.arange(tokens, device=fp32.device)
    top, second = torch.tensor(greedy, device=idx.device), torch.tensor(seconds, device=idx.device)
    shift = ((bf16[idx, top] - bf16[idx, second]) - (fp32[idx, top] - fp32[idx, second])).abs()
    bf16_top = torch.topk(bf16, 2)
    bf16_ids = bf16_top.indices[:, 0].tolist()
    epsilon = max(1.5 * float(shift.max()), 2.0**-6)
    return {
        "format": 2, "prompt_ids": PROMPT_IDS, "greedy_ids": greedy,
        "margins": [round(m, 6) for m in margins], "second_ids": seconds,
        "reference": "transformers, the BF16 weights upcast to fp32, eager attention, TF32 off, "
                     "KV-cached greedy",
        "tie_epsilon": round(epsilon, 6),
        "tie_rule": "fp32 margin < max(1.5 x max bf16.margin_shift, 2^-6)",
        "bf16": {
            "teacher_forced_ids": bf16_ids,
            "agree": sum(a == b for a, b in zip(bf16_ids, greedy)),
            "margins": [round(float(v[0] - v[1]), 6) for v in bf16_top.values],
            "margin_shift": [round(float(v), 6) for v in shift],
            "max_abs_logit_diff": round(float((bf16 - fp32).abs().max()), 6),
        },
        "reference_s": round(time.time() - t0, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
