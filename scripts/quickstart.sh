#!/usr/bin/env bash
# The whole story at tiny scale on the embedded synthetic dataset, on CPU in a few minutes:
# data → MAE pretraining → AVA fine-tuning → frame-mAP → rendered demo video.
# Usage: scripts/quickstart.sh [PYTHON]   (outputs under output/quickstart/)
set -euo pipefail
PY=${1:-.venv/bin/python}
cd "$(dirname "$0")/.."
OUT=output/quickstart
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
t0=$(date +%s)
stage() { echo; echo "==== [$(( $(date +%s) - t0 ))s] $*"; }

stage "1/4 tiny AVA-layout dataset -> datasets/tiny_ava"
"$PY" datasets/make_tiny_ava.py --root datasets/tiny_ava

stage "2/4 MAE pretraining (tube masking 90%) -> $OUT/pretrain"
"$PY" tools/pretrain_mae.py --config-file configs/pretrain/tiny.py train.output_dir=$OUT/pretrain

stage "3/4 AVA fine-tuning from the MAE checkpoint (evaluates at the end) -> $OUT/ava"
"$PY" tools/train_net.py --config-file configs/ava/tiny.py \
    train.init_checkpoint=$OUT/pretrain/model_final.pth train.output_dir=$OUT/ava

stage "4/4 demo: render detections on a validation video -> $OUT/demo"
video=$(ls datasets/tiny_ava/videos/*.mp4 | tail -n 1)
"$PY" tools/demo.py --config-file configs/ava/tiny.py --checkpoint $OUT/ava/model_final.pth \
    --input "$video" --output $OUT/demo \
    --person-detector csv --boxes datasets/tiny_ava/annotations/ava_val_predicted_boxes.csv

stage "done"
"$PY" - "$OUT" <<'PYEOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
def map_of(d):
    p = out / d / "inference" / "ava_metrics.json"
    return json.loads(p.read_text())["mAP"] if p.exists() else float("nan")
print(f"frame-mAP after fine-tuning from the MAE checkpoint: {map_of('ava'):.4f}")
print("loss curves:", out / "pretrain/loss_curve.png", out / "ava/loss_curve.png")
print("MAE reconstructions:", sorted((out / "pretrain").glob("reconstruction_*.png"))[-1:])
print("per-class AP chart:", out / "ava/inference/ava_per_class_ap.png")
print("demo:", sorted(str(p) for p in (out / "demo").glob("*")))
PYEOF
