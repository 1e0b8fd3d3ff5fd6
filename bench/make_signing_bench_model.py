#!/usr/bin/env python3
"""Make a ~0.7B-parameter random GLM-4 model in fp32 (~2.7 GB, three ~1 GB safetensors shards)
for the model-integrity benchmark (bench/model_integrity_bench.cpp): big enough that hashing
and loading are dominated by reading the weights, sharded so hashing runs in parallel.

Offline tool, not part of CI; its output is never committed (delete it afterwards). It reuses
the shape and tokenizer handling of scripts/make_bench_model.py with more, wider layers:

    /opt/refenv/bin/python bench/make_signing_bench_model.py --out /tmp/autoglm-sign-bench
"""

import argparse
import shutil
import sys
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import make_bench_model  # noqa: E402  (the shared shape and tokenizer files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/autoglm-sign-bench")
    ap.add_argument("--layers", type=int, default=24)
    args = ap.parse_args()
    torch.manual_seed(0)
    shape = dict(make_bench_model.SHAPE, hidden_size=1536, num_hidden_layers=args.layers,
                 num_attention_heads=24, intermediate_size=4096)
    model = transformers.Glm4ForCausalLM(transformers.Glm4Config(**shape)).eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True, max_shard_size="1GB")
    for name in make_bench_model.TOKENIZER_FILES:
        source = make_bench_model.TOKENIZER_FIXTURE / name
        if source.exists():
            shutil.copy(source, out / name)
    params = sum(p.numel() for p in model.parameters())
    print(f"{out}: {params / 1e6:.1f} M parameters, fp32")


if __name__ == "__main__":
    main()
