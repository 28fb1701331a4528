#!/usr/bin/env bash
# The one GPU check of issue 21: golf's pr1394 training speed (tokens/s, MFU in both FLOP conventions,
# peak memory, loss at equal steps), the #1394 record's own script the same way when given, the eval
# benches, the Triton-vs-reference kernel checks and the GPU-only tests; ONE JSON under bench/results/.
#
#   bash bench/gpu_check.sh [--reference runs/reference/train_gpt.py] [--steps 10] [--warmup 3] [--tiny] [--out FILE]
#
# Sized for < 8 minutes on one H100 (compile included). Each step runs under its own time limit and
# the JSON records every step's exit status, so one failing step loses nothing the others measured.
# --tiny runs the same steps at CPU size (the test that keeps this script working). See bench/README.md.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
STEPS=10 WARMUP=3 TINY="" REF="" OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --reference) REF=${2:?--reference needs a path}; shift 2 ;;
    --steps) STEPS=${2:?--steps needs a number}; shift 2 ;;
    --warmup) WARMUP=${2:?--warmup needs a number}; shift 2 ;;
    --tiny) TINY="--tiny"; shift ;;
    --out) OUT=${2:?--out needs a path}; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$STEPS$WARMUP" in *[!0-9]*) echo "gpu_check: --steps and --warmup take whole numbers" >&2; exit 2 ;; esac
if [ -n "$REF" ]; then
  [ -f "$REF" ] || { echo "gpu_check: --reference $REF: no such file" >&2; exit 2; }
  # record code is never committed: inside this repository it must sit in a git-ignored path
  case "$(cd "$(dirname "$REF")" && pwd -P)/" in
    "$(pwd -P)"/*) git check-ignore -q "$REF" || { echo "gpu_check: --reference $REF is inside the repository but not git-ignored; put it under runs/reference/" >&2; exit 2; } ;;
  esac
fi
"$PY" -c "import golf_core, torch" || { echo "gpu_check: $PY cannot import golf_core and torch (run scripts/setup.sh)" >&2; exit 2; }

if [ -n "$TINY" ]; then
  ATT=sdpa LIMIT_TRAIN=600 LIMIT_EVAL=300 LIMIT_KERNELS=120 LIMIT_TESTS=300
  EVAL_SIZES=""
else
  ATT=$("$PY" -c "import flash_attn_interface" 2>/dev/null && echo flash3 || echo sdpa)
  LIMIT_TRAIN=200 LIMIT_EVAL=100 LIMIT_KERNELS=60 LIMIT_TESTS=60
  EVAL_SIZES="--tokens 1048576 --sliding-tokens 262144 --adapter-tokens 65536"
fi
PARTS=$(mktemp -d "${TMPDIR:-/tmp}/golf-gpu-check.XXXXXX")
trap 'rm -rf "$PARTS"' EXIT
STATUS="$PARTS/status.tsv"
: > "$STATUS"

step() {  # step NAME LIMIT_S CMD...: run, log to $PARTS/NAME.log, record "name rc seconds"
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS rc
  echo "== gpu_check: $name (limit ${limit}s, $(date -u +%H:%M:%S)): $*"
  timeout --signal=TERM --kill-after=15 "$limit" "$@" > >(tee "$PARTS/$name.log") 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >> "$STATUS"
  [ "$rc" = 0 ] || echo "== gpu_check: $name FAILED (exit $rc); going on"
}

TRAIN=(bench/gpu_train.py --recipe recipes/pr1394.toml --steps "$STEPS" --warmup "$WARMUP" --attention "$ATT" --synthetic $TINY)
if [ -n "$REF" ]; then
  step reference "$LIMIT_TRAIN" "$PY" "${TRAIN[@]}" --reference "$REF" --reference-only --out "$PARTS/reference.json"
  if [ -f "$PARTS/reference.reference.log" ]; then
    step golf_train "$LIMIT_TRAIN" "$PY" "${TRAIN[@]}" --reference-log "$PARTS/reference.reference.log" --out "$PARTS/golf_train.json"
  else
    step golf_train "$LIMIT_TRAIN" "$PY" "${TRAIN[@]}" --out "$PARTS/golf_train.json"
  fi
else
  step golf_train "$LIMIT_TRAIN" "$PY" "${TRAIN[@]}" --out "$PARTS/golf_train.json"
fi
step eval "$LIMIT_EVAL" "$PY" bench/gpu_eval.py --recipe recipes/pr1394.toml --attention "$ATT" --synthetic $TINY $EVAL_SIZES --out "$PARTS/eval.json"
step kernels "$LIMIT_KERNELS" "$PY" bench/gpu_kernels.py $TINY --out "$PARTS/kernels.json"
step gpu_tests "$LIMIT_TESTS" "$PY" -m pytest -q -p no:cacheprovider -p no:randomly -rs \
  tests/test_fused_kernels.py tests/test_fused_mlp.py -k "gpu or interpreter"

"$PY" - "$PARTS" "$ATT" "$TINY" "$REF" "$OUT" <<'PYEOF'
"""Merge the steps' JSON files into the one gpu_check result."""
import json
import sys
from pathlib import Path

sys.path.insert(0, "bench")
import torch  # noqa: E402
from _common import RESULTS, device_slug, environment, write_result  # noqa: E402

parts, att, tiny, ref, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
env = environment(device)
steps = {}
for line in (parts / "status.tsv").read_text().splitlines():
    name, rc, secs = line.split("\t")
    path = parts / f"{name}.json"
    log = (parts / f"{name}.log").read_text(errors="replace").splitlines() if (parts / f"{name}.log").exists() else []
    steps[name] = {"rc": int(rc), "seconds": int(secs), "timed_out": int(rc) in (124, 137),
                   "result": json.loads(path.read_text()) if path.exists() else None, "log_tail": log[-15:]}
ref_log = parts / "reference.reference.log"
golf = (steps.get("golf_train") or {}).get("result") or {}
summary = {
    "attention": att,
    "windows": [{k: w.get(k) for k in ("name", "tokens_per_s", "ms_per_step", "mfu", "mfu_full_attention",
                                       "flops_per_token", "flops_per_token_full_attention", "peak_memory_mib")}
                for w in (golf.get("golf") or {}).get("windows", [])],
    "compiled_in_clock": (golf.get("golf") or {}).get("compiled_in_clock"),
    "fused_kernels": (golf.get("golf") or {}).get("fused_kernels"),
    "comparison": golf.get("comparison"),
    "targets": golf.get("targets"),
    "kernels": [{k: r.get(k) for k in ("kernel", "reference_ms", "triton_ms", "diff")} | {"used": r["check"]["used"],
                "reason": r["check"]["reason"]} for r in ((steps.get("kernels") or {}).get("result") or {}).get("kernels", [])],
    "all_steps_ok": all(s["rc"] == 0 for s in steps.values()),
}
res = {"env": env, "tiny": bool(tiny), "reference_script": ref or None,
       "reference_log": ref_log.read_text(errors="replace") if ref_log.exists() else None,
       "summary": summary, "steps": steps}
path = write_result("gpu_check", res, Path(out) if out else None)
print(json.dumps({k: summary[k] for k in ("attention", "windows", "all_steps_ok")}, indent=1))
print(f"gpu_check: wrote {path}")
PYEOF
