#!/usr/bin/env python3
"""Measure transformers' OWN low-precision error on every fixture model, so that the CUDA
backend's end-to-end tolerances are stated relative to what transformers itself achieves in
BF16/FP16 (issue 6: "logits within BF16 tolerance of transformers run in BF16").
Thread ownership: gpuval (the CUDA backend's correctness criteria).

For each fixture (tests/fixtures/models/*-tiny and models/autoglm-tiny, the directories with a
reference.json) and each dtype (bfloat16, float16) it loads the checkpoint with transformers in
that dtype (eager attention, like the fp32 truth) and compares with the committed fp32 truth:

  * logits of every prompt position: per prompt, the worst row of max|lowp - fp32| / max|fp32|
    (the test's max_rel_diff) and the largest absolute difference;
  * teacher-forced greedy: the prompt followed by the fp32 greedy_ids in ONE forward pass; at
    each of the 32 positions transformers' own low-precision argmax is compared with the fp32
    greedy token, and the fp32 top-2 margin (reference.json greedy_margins) of every
    disagreement is recorded. Those are transformers' own "BF16 ties".

Default: writes <fixture>/lowp_error.json (committed; a few KB each). The fixture test reads it.
With --logits-out DIR (run by scripts/gpu_check.sh on the GPU machine, --device cuda) it also
writes DIR/<fixture>.<dtype>.safetensors holding transformers' low-precision prompt logits
("logits.<i>", fp32 [n, vocab], the names of reference_logits.safetensors) for the test's direct
comparison (AUTOGLM_HF_LOWP_LOGITS_DIR), and, with --no-json, leaves the committed files alone.

    /opt/refenv/bin/python scripts/lowp_reference.py            # CPU; refresh lowp_error.json
    python3 scripts/lowp_reference.py --device cuda --no-json --logits-out /tmp/hf_lowp
"""

import argparse
import json
import sys
from pathlib import Path

import safetensors.torch
import torch
import transformers

REPO = Path(__file__).resolve().parent.parent
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def fixture_dirs():
    roots = [REPO / "tests/fixtures/models", REPO / "models"]
    return sorted(d for r in roots if r.is_dir() for d in r.iterdir()
                  if (d / "reference.json").is_file())


def row_errors(lowp: torch.Tensor, truth: torch.Tensor):
    """Per row: max|diff| / max|truth| and max|diff|."""
    diff = (lowp - truth).abs().amax(-1)
    return diff / truth.abs().amax(-1).clamp_min(1e-30), diff


@torch.no_grad()
def measure(model, ref, truth, device):
    """Logit errors and teacher-forced agreement of one model in one dtype."""
    prompts, lowp_logits = {}, {}
    for p in ref["prompts"]:
        ids = torch.tensor([p["ids"]], device=device)
        out = model(ids).logits[0].float().cpu()
        lowp_logits[p["logits_tensor"]] = out.contiguous()
        fp32 = truth[p["logits_tensor"]].float().reshape(out.shape)
        rel, absd = row_errors(out, fp32)
        # Teacher-forced: position len(ids)-1+i predicts greedy_ids[i].
        seq = p["ids"] + p["greedy_ids"][:-1]
        rows = model(torch.tensor([seq], device=device)).logits[0, len(p["ids"]) - 1:]
        argmax = rows.float().argmax(-1).cpu().tolist()
        flips = [{"step": i, "hf_lowp": a, "fp32": g, "fp32_margin": m}
                 for i, (a, g, m) in enumerate(zip(argmax, p["greedy_ids"], p["greedy_margins"]))
                 if a != g]
        prompts[p["name"]] = {
            "max_rel_diff": round(float(rel.max()), 6),
            "max_abs_diff": round(float(absd.max()), 6),
            "logit_scale": round(float(fp32.abs().max()), 6),
            "teacher_forced_agree": len(argmax) - len(flips),
            "teacher_forced_flips": flips,
        }
    return prompts, lowp_logits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--logits-out", type=Path, help="write <fixture>.<dtype>.safetensors here")
    ap.add_argument("--no-json", action="store_true", help="leave lowp_error.json unchanged")
    ap.add_argument("fixtures", nargs="*", help="fixture names (default: all)")
    args = ap.parse_args()
    if args.logits_out:
        args.logits_out.mkdir(parents=True, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    for d in fixture_dirs():
        if args.fixtures and d.name not in args.fixtures:
            continue
        ref = json.loads((d / "reference.json").read_text())
        truth = safetensors.torch.load_file(d / "reference_logits.safetensors")
        result = {"what": "transformers' own error in each dtype vs the committed fp32 truth; "
                          "made by scripts/lowp_reference.py",
                  "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
                  "versions": {"torch": torch.__version__,
                               "transformers": transformers.__version__},
                  "dtypes": {}}
        for name, dt in DTYPES.items():
            model = transformers.AutoModelForCausalLM.from_pretrained(
                d, dtype=dt, attn_implementation="eager").to(args.device).eval()
            prompts, lowp_logits = measure(model, ref, truth, args.device)
            result["dtypes"][name] = {
                "worst_max_rel_diff": max(p["max_rel_diff"] for p in prompts.values()),
                "worst_max_abs_diff": max(p["max_abs_diff"] for p in prompts.values()),
                "teacher_forced_agree": sum(p["teacher_forced_agree"] for p in prompts.values()),
                "teacher_forced_total": sum(len(p["greedy_ids"]) for p in ref["prompts"]),
                "prompts": prompts}
            if args.logits_out:
                safetensors.torch.save_file(lowp_logits, args.logits_out / f"{d.name}.{name}"
                                            ".safetensors", metadata={"format": "pt"})
            r = result["dtypes"][name]
            flips = [f["fp32_margin"] for p in prompts.values() for f in p["teacher_forced_flips"]]
            print(f"{d.name} {name}: worst max_rel_diff {r['worst_max_rel_diff']:.4g}, max abs "
                  f"{r['worst_max_abs_diff']:.4g}, teacher-forced {r['teacher_forced_agree']}/"
                  f"{r['teacher_forced_total']}, flip margins {flips}")
            del model
        if not args.no_json:
            (d / "lowp_error.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
