"""Export the AVA action detector (clip + person RoIs -> action scores, RoIAlign included) to ONNX.

    python tools/export_onnx.py --config-file configs/ava/tiny.py --checkpoint output/quickstart/ava/model_final.pth \
        --output model.onnx [--clip-size H W] [--batch 1] [--opset 17] [key=value ...]

Graph inputs: ``clip`` float32 [B, 3, T, H, W] in 0-255 (RGB, not normalised), ``rois`` float32
[K, 5] (batch index, x1, y1, x2, y2 in clip pixels); output ``scores`` [K, C]
probabilities (sigmoid; softmax for single-label models); multiply by the person score yourself, as the
PyTorch model does. B and K are dynamic; T, H, W are fixed. The export is checked against PyTorch in
onnxruntime before exiting.

The checkpoint must be this model's (``load_init_weights(..., full_model=True)``: a missing, corrupt,
unrelated or NaN checkpoint is refused), the weights and both sides' scores must be finite, and the
difference must be within ``--atol``; otherwise the tool ends with ``error: ...`` (exit code 2). The model
is exported and checked under a temporary name and renamed to ``--output`` only when the check passed: a
failed export writes nothing and leaves an earlier ``--output`` as it was.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.cli import run_main


def check_arguments(args) -> None:
    """Refuse bad values before anything is loaded."""
    import math

    if args.clip_size and min(args.clip_size) < 1:
        raise ValueError(f"--clip-size must be two positive integers (H W), got {args.clip_size}")
    if args.batch < 1:
        raise ValueError(f"--batch must be an integer >= 1, got {args.batch}")
    if args.opset < 16:
        raise ValueError(f"--opset must be >= 16 (ONNX RoiAlign's pixel modes), got {args.opset}")
    if not (math.isfinite(args.atol) and args.atol > 0):
        raise ValueError(f"--atol must be a finite number > 0, got {args.atol}")
    out = os.path.abspath(args.output)
    if os.path.isdir(out):
        raise ValueError(f"--output {args.output} is a folder; give the .onnx file to write")
    parent = os.path.dirname(out)
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise ValueError(f"--output {args.output}: {parent} is a file, not a folder")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True)
    p.add_argument(
        "--checkpoint",
        required=True,
        help="this model's weights: a file, or hf://ORG/NAME/FILE on the Hugging Face Hub (docs/weights.md)",
    )
    p.add_argument("--output", required=True, help="output .onnx file")
    p.add_argument(
        "--clip-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="clip height and width (default: test short side x 4/3, rounded up to the patch size)",
    )
    p.add_argument("--batch", type=int, default=1, help="batch size of the tracing example (B stays dynamic)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--atol", type=float, default=1e-4, help="max |ONNX - PyTorch| accepted by the check")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    args = p.parse_args(argv)
    check_arguments(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from vmae_det.demo import ActionPredictor
    from vmae_det.modeling.onnx_export import (
        ExportCheckError,
        compare_with_pytorch,
        example_inputs,
        export_action_detector,
    )

    predictor = ActionPredictor.from_config(args.config_file, args.checkpoint, opts=args.opts, device="cpu")
    model = predictor.model
    div = int(getattr(getattr(model, "backbone", None), "size_divisibility", 1) or 1)
    if args.clip_size:
        h, w = args.clip_size
    else:
        short = predictor.test_short_side or 224
        h, w = short, int(round(short * 4 / 3))
    h, w = -(-h // div) * div, -(-w // div) * div  # the ViT needs multiples of its patch size
    shape = (args.batch, 3, predictor.num_frames, h, w)
    from vmae_det.formats.atomic import atomic_save

    def export_and_check(tmp: str) -> float:
        export_action_detector(model, tmp, shape, opset=args.opset)
        clip, rois = example_inputs(shape, num_rois=4, seed=1)
        diff = compare_with_pytorch(model, tmp, clip, rois)
        if not diff <= args.atol:  # also catches NaN
            raise ExportCheckError(
                f"{args.output}: max |onnxruntime - pytorch| = {diff:.2e} exceeds --atol {args.atol}"
            )
        return diff

    # Checked under a temporary name and renamed only when the check passed: a failed export leaves nothing.
    diff = atomic_save(args.output, export_and_check)
    print(f"exported {args.output}: clip {shape}, max |onnxruntime - pytorch| = {diff:.2e}")
    return 0


def cli() -> int:
    """Console-script entry point: exit code of :func:`main` (2 with one ``error:`` line on bad input)."""
    return run_main(main, interrupted="nothing written (an earlier --output is untouched)")


if __name__ == "__main__":
    sys.exit(cli())
