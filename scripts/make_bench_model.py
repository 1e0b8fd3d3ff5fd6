#!/usr/bin/env python3
"""Make a ~110M-parameter random-weight GLM-4-0414 (Glm4ForCausalLM) model for benchmarks.

Offline, single-threaded tool (not part of CI; its output is never committed). Writes one
hub-style directory per precision under --out (default /tmp/autoglm-bench): f32/ and bf16/
(and f16/ with --f16), each with config.json, model.safetensors and the glm4-tiny fixture's
tokenizer files (the fixture vocabulary is smaller than vocab_size; the rest of the embedding
rows are simply never produced by the tokenizer, which is fine for speed measurements that use
random token ids). Usage:

    /opt/refenv/bin/python scripts/make_bench_model.py [--out /tmp/autoglm-bench]
"""

import argparse
import shutil
from pathlib import Path

import torch
import transformers

REPO = Path(__file__).resolve().parent.parent
TOKENIZER_FIXTURE = REPO / "tests" / "fixtures" / "models" / "glm4-tiny"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "generation_config.json")

# hidden 768, 10 layers, 12 heads / 2 KV heads of 64, MLP 2048, vocab 32000, untied LM head:
# 10 * 6.1M (layers) + 2 * 24.6M (embeddings, LM head) ~= 110M parameters.
SHAPE = dict(
    hidden_size=768,
    num_hidden_layers=10,
    num_attention_heads=12,
    num_key_value_heads=2,
    head_dim=64,
    intermediate_size=2048,
    vocab_size=32000,
    max_position_embeddings=4096,
    partial_rotary_factor=0.5,
    attention_bias=True,
    tie_word_embeddings=False,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    pad_token_id=1000,
    eos_token_id=[1000, 1007, 1009],
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/autoglm-bench")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--f16", action="store_true", help="also write an F16 copy")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    config = transformers.Glm4Config(**SHAPE)
    model = transformers.Glm4ForCausalLM(config).eval()
    params = sum(p.numel() for p in model.parameters())
    precisions = {"f32": torch.float32, "bf16": torch.bfloat16}
    if args.f16:
        precisions["f16"] = torch.float16
    for name, dtype in precisions.items():
        out = Path(args.out) / name
        out.mkdir(parents=True, exist_ok=True)
        model.to(dtype).save_pretrained(out, safe_serialization=True)
        model.to(torch.float32)
        for f in TOKENIZER_FILES:
            if (TOKENIZER_FIXTURE / f).exists():
                shutil.copy(TOKENIZER_FIXTURE / f, out / f)
        print(f"{out}: {params / 1e6:.1f} M parameters, {dtype}")


if __name__ == "__main__":
    main()
