#!/usr/bin/env bash
# The pretrained-vs-scratch experiment (`make quickstart-compare`, docs/quickstart.md "Pretrained vs scratch";
# measured numbers: docs/experiments.md): MAE-pretrain a tiny ViT on 48 unlabelled videos, fine-tune the AVA
# detector on 2 labelled videos from that checkpoint and from scratch (same config, budget and seeds), and
# print both frame-mAPs over the seeds. 15-30 min on 2 CPU cores (9600 pretraining iterations, 2 x 5 fine-tunings).
# Usage: scripts/quickstart_compare.sh [PYTHON]   (outputs under output/quickstart_compare/)
# Environment: COMPARE_SEEDS (default "0 1 2 3 4"; at least 2 distinct seeds: the result is a spread, never one
# run), COMPARE_PRETRAIN_ITERS (default: configs/pretrain/tiny_quickstart.py's 9600), COMPARE_OUT.
set -euo pipefail
PY=${1:-.venv/bin/python}
cd "$(dirname "$0")/.."
OUT=${COMPARE_OUT:-output/quickstart_compare}
UNLABELLED=datasets/tiny_ava_unlabelled
LABELLED=datasets/tiny_ava_few
SEEDS=${COMPARE_SEEDS:-0 1 2 3 4}
# One thread: the tiny model gains nothing from a second one (measured on 2 cores: 0.057 s/iteration of
# MAE pretraining with 1 thread, 0.135 s with 2), and the data-loader worker uses the other core.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
t0=$(date +%s)
stage() { echo; echo "==== [$(( $(date +%s) - t0 ))s] $*"; }

stage "1/4 tiny synthetic data: 48 unlabelled videos -> $UNLABELLED, 2 labelled + 12 validation videos -> $LABELLED"
"$PY" datasets/make_tiny_ava.py --root $UNLABELLED --videos-only --seed 1 --num-train-videos 48 --background plain
"$PY" datasets/make_tiny_ava.py --root $LABELLED --seed 2 --num-train-videos 2 --num-val-videos 12 --format videos --background plain

stage "2/4 MAE pretraining on the unlabelled videos (tube masking 90%) -> $OUT/pretrain"
iters=()
if [ -n "${COMPARE_PRETRAIN_ITERS:-}" ]; then iters=(train.max_iter="$COMPARE_PRETRAIN_ITERS"); fi
"$PY" tools/pretrain_mae.py --config-file configs/pretrain/tiny_quickstart.py --videos $UNLABELLED/videos \
    train.output_dir=$OUT/pretrain "${iters[@]}"
"$PY" scripts/quickstart_reconstruction.py --config-file configs/pretrain/tiny_quickstart.py \
    --checkpoint $OUT/pretrain/model_final.pth --video $LABELLED/videos/tinyval000.mp4 \
    --output $OUT/reconstruction.png --clips 2

stage "3/4 fine-tuning on the 2 labelled videos, from the MAE checkpoint and from scratch, seeds $SEEDS -> $OUT/compare"
# shellcheck disable=SC2086  # SEEDS is a list
"$PY" scripts/quickstart_compare.py --pretrained $OUT/pretrain/model_final.pth --ava-root $LABELLED \
    --config-file configs/ava/tiny.py --output-dir $OUT/compare --seeds $SEEDS

stage "4/4 done"
"$PY" - "$OUT" <<'PYEOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
summary = json.loads((out / "compare" / "summary.json").read_text())
for arm in ("pretrained", "scratch"):
    print(f"{arm:10s} frame-mAP per seed: {', '.join(f'{v:.3f}' for v in summary[arm]['mAP'])}")
print(summary["summary"])
print("measured elsewhere, and how far runs on other machines spread: docs/experiments.md")
print("MAE loss curve:", out / "pretrain/loss_curve.png")
print("MAE reconstructions:", sorted(str(p) for p in out.glob("reconstruction*.png")))
print("per-class AP chart:", out / f"compare/pretrained_seed{summary['seeds'][0]}/inference/ava_per_class_ap.png")
PYEOF
