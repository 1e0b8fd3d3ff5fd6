#!/usr/bin/env python3
"""The full-size check's verdict, for scripts/gpu_check.sh: our teacher-forced argmax on the
GLM-4-9B-shaped model (cuda_greedy --teacher, JSON) against transformers' fp32 greedy
continuation of the same BF16 weights (reference_greedy.json format 2, made by
scripts/make_glm9b_random.py). Owned by gpuval.

A position where we differ is a TIE when transformers' fp32 top-2 margin there is below the
reference's tie_epsilon (1.5 x the largest change transformers' own BF16 run makes to a top-2
margin on these positions, at least 2^-6): BF16 may flip it. FAIL when any other position
differs; otherwise PASS when at least half of the positions are not ties, INCONCLUSIVE when
fewer are (too few positions could have failed for the check to mean anything: rerun
make_glm9b_random.py with more --tokens). Prints one line per position, then the verdict line:
"PASS|FAIL|INCONCLUSIVE detail".

    python3 scripts/gpu_check_9b_compare.py cuda_greedy.json reference_greedy.json
"""

import json
import sys


def main() -> int:
    ours = json.load(open(sys.argv[1]))
    ref = json.load(open(sys.argv[2]))
    if ref.get("format") != 2 or not ours.get("teacher_forced"):
        print(f"FAIL needs a format-2 reference (got {ref.get('format', 1)}) and a teacher-forced "
              f"run (got {ours.get('teacher_forced', False)})")
        return 1
    eps, want, margins = ref["tie_epsilon"], ref["greedy_ids"], ref["margins"]
    got = ours["ids"]
    n = min(len(got), len(want))
    hf_bf16 = ref["bf16"]["teacher_forced_ids"]
    agree, ties, bad = 0, [], []
    print("pos  ours     fp32-ref  hf-bf16  fp32-margin  bf16-shift  our-margin  our-gap-to-ref")
    for i in range(n):
        verdict = "ok"
        if got[i] == want[i]:
            agree += 1
        elif margins[i] < eps:
            verdict = "TIE"
            ties.append(i)
        else:
            verdict = "MISMATCH"
            bad.append(i)
        print(f"{i:3d}  {got[i]:7d}  {want[i]:8d}  {hf_bf16[i]:7d}  {margins[i]:11.4f}  "
              f"{ref['bf16']['margin_shift'][i]:10.4f}  {ours['margins'][i]:10.4f}  "
              f"{ours['teacher_gaps'][i]:14.4f}  {verdict}")
    non_ties = sum(1 for m in margins[:n] if m >= eps)
    hf_agree = sum(a == b for a, b in zip(hf_bf16[:n], want[:n]))
    detail = (f"{agree} of {n} agree (teacher-forced); {len(ties)} ties {ties} (fp32 margin < "
              f"epsilon {eps:.4f}); {len(bad)} non-tie mismatches {bad}; {non_ties} non-tie "
              f"positions; transformers' own BF16 agrees at {hf_agree} of {n}")
    verdict = "FAIL" if bad else ("PASS" if 2 * non_ties >= n else "INCONCLUSIVE")
    print(f"{verdict} {detail}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
