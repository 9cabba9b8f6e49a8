"""Run the official VideoMAE-Action-Detection code (VMAD) end to end on ``tests/data/tiny_vmad_ava`` and write
``tests/reference/vmad_e2e_reference.pt``, the oracle of ``tests/tools/test_vmad_end_to_end.py``.

Not part of the test suite (VMAD is not a dependency and none of its code is committed here). With a checkout
of https://github.com/MCG-NJU/VideoMAE-Action-Detection and timm 0.4.12 + tensorboardX
(``pip install --no-deps -t /tmp/refdeps timm==0.4.12 tensorboardX``)::

    PYTHONPATH=/path/to/VideoMAE-Action-Detection:/tmp/refdeps:tests \\
        .venv/bin/python tests/reference/make_vmad_e2e_reference.py --out tests/reference/vmad_e2e_reference.pt

What runs is VMAD's own: the weights of ``tests/vmad_reference.py`` (``vmad_state_dict``) are loaded into the
model ``run_class_finetuning.py`` creates from the arguments of ``scripts/ava/videomae_vit_small_k400_pretrain+
finetune/run.sh`` and written by ``utils.save_model`` (with the optimizer ``create_optimizer`` builds); then
``run_class_finetuning.main`` runs with those arguments plus ``--eval --resume <that checkpoint> --device cpu``:
its dataset (``AVAVideoDataset``: clips, image info, person boxes >= 0.8), transforms, DataLoader (batches of
12, ``BatchCollator(16)``), model, ``PostProcessor`` and ``do_ava_evaluation`` (AlphAction's Pascal evaluator).
Recorded: VMAD's detections before its CSV's rounding (``ava_results``: per keyframe its boxes as it writes
them and the probabilities of all 80 actions), the first rows of the CSV it wrote, its metrics, the
checkpoint's container layout, and for the training split the clips and boxes its training transforms give
after ``random.seed(seed)``.

Runtime shims, applied here and not in VMAD's files: ``torch._six`` (gone from torch), numpy's removed aliases
(``np.float``, ``np.bool``, ``np.NAN``, ...), ``torch.load``'s old default ``weights_only=False`` (for the
checkpoint written here), and an empty ``transforms`` module for ``datasets.py``'s
``from transforms import *`` (a module its repository does not have).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import types

import numpy as np
import torch
import vmad_reference as R  # tests/vmad_reference.py (on PYTHONPATH)

RUN_SH_ARGS = [  # scripts/ava/videomae_vit_small_k400_pretrain+finetune/run.sh
    "--model",
    "vit_small_patch16_224",
    "--batch_size",
    "8",
    "--input_size",
    "224",
    "--save_ckpt_freq",
    "10",
    "--num_frames",
    "16",
    "--sampling_rate",
    "4",
    "--opt",
    "adamw",
    "--lr",
    "5e-4",
    "--layer_decay",
    "0.6",
    "--opt_betas",
    "0.9",
    "0.999",
    "--weight_decay",
    "0.05",
    "--epochs",
    "30",
    "--data_set",
    "ava",
    "--drop_path",
    "0.2",
    "--val_freq",
    "10",
]
TRAIN_SEEDS = (0, 1)
#: Frames and pixel stride of the stored training clips (enough to catch a wrong crop, flip or colour).
STORED_FRAMES, PIXEL_STRIDE = (0, 5, 10, 15), 4


def shims() -> None:
    for name, value in (
        ("float", float),
        ("int", int),
        ("bool", bool),
        ("object", object),
        ("NAN", np.nan),
        ("NaN", np.nan),
        ("Inf", np.inf),
    ):
        if not hasattr(np, name):
            setattr(np, name, value)
    six = types.ModuleType("torch._six")
    six.inf = float("inf")
    six.string_classes = (str, bytes)
    sys.modules.setdefault("torch._six", six)
    sys.modules.setdefault("transforms", types.ModuleType("transforms"))
    load = torch.load
    # VMAD was written when torch.load unpickled anything; its own checkpoint (written above) holds an
    # argparse.Namespace, which torch >= 2.6's default weights_only=True refuses.
    torch.load = lambda *a, **k: load(*a, **{"weights_only": False, **k})


def vmad_args(extra):
    import run_class_finetuning as rcf

    argv, sys.argv = sys.argv, ["run_class_finetuning.py"] + RUN_SH_ARGS + list(extra)
    try:
        args, ds_init = rcf.get_args()
    finally:
        sys.argv = argv
    return args, ds_init


def write_checkpoint(out_dir: str) -> str:
    """VMAD's model with the test weights, saved by VMAD's ``utils.save_model`` (epoch 29 of 30)."""
    import utils
    from optim_factory import LayerDecayValueAssigner, create_optimizer
    from timm.models import create_model

    os.makedirs(out_dir, exist_ok=True)
    args, _ = vmad_args(["--output_dir", out_dir, "--log_dir", out_dir, "--device", "cpu"])
    model = create_model(
        args.model,
        pretrained=False,
        num_classes=args.nb_classes,
        all_frames=args.num_frames * args.num_segments,
        tubelet_size=args.tubelet_size,
        drop_rate=args.drop,
        drop_path_rate=args.drop_path,
        attn_drop_rate=args.attn_drop_rate,
        drop_block_rate=None,
        use_checkpoint=args.use_checkpoint,
        use_mean_pooling=args.use_mean_pooling,
        init_scale=args.init_scale,
    )
    model.load_state_dict(R.vmad_state_dict(), strict=True)
    n = model.get_num_layers()
    assigner = LayerDecayValueAssigner(list(args.layer_decay ** (n + 1 - i) for i in range(n + 2)))
    optimizer = create_optimizer(
        args,
        model,
        skip_list=model.no_weight_decay(),
        get_num_layer=assigner.get_layer_id,
        get_layer_scale=assigner.get_scale,
    )
    utils.save_model(
        args=args,
        epoch=29,
        model=model,
        model_without_ddp=model,
        optimizer=optimizer,
        loss_scaler=utils.NativeScalerWithGradNormCount(),
    )
    return os.path.join(out_dir, "checkpoint-29.pth")


def run_test_path(ckpt: str, out_dir: str) -> dict:
    import engine_for_finetuning as eff
    import run_class_finetuning as rcf

    captured = {}
    evaluate = eff.do_ava_evaluation

    def capture(dataset, predictions, output_folder):
        res = evaluate(dataset=dataset, predictions=predictions, output_folder=output_folder)
        captured["metrics"], captured["ava_results"] = res
        captured["keyframes"] = [dataset.get_video_info(i) for i in range(len(dataset))]
        return res

    eff.do_ava_evaluation = capture
    os.makedirs(out_dir, exist_ok=True)
    args, ds_init = vmad_args(
        [
            "--output_dir",
            out_dir,
            "--log_dir",
            out_dir,
            "--device",
            "cpu",
            "--eval",
            "--resume",
            ckpt,
            "--num_workers",
            "0",
        ]
    )
    try:
        rcf.main(args, ds_init)
    except SystemExit as e:  # main() ends --eval with exit(0)
        assert not e.code, e.code
    finally:
        eff.do_ava_evaluation = evaluate
    with open(os.path.join(out_dir, "inference", "result.csv")) as f:
        captured["csv"] = f.read()
    return captured


def training_samples() -> dict:
    from data.transforms import TransformsCfg, build_transforms

    import datasets as vmad_datasets

    ds = vmad_datasets.build_ava_dataset(True, build_transforms(is_train=True))
    mean = torch.tensor(TransformsCfg.PIXEL_MEAN).view(3, 1, 1, 1)
    std = torch.tensor(TransformsCfg.PIXEL_STD).view(3, 1, 1, 1)
    out = {}
    for seed in TRAIN_SEEDS:
        for i in range(len(ds)):
            random.seed(seed)
            clip, boxes, _ = ds[i]
            pixels = (clip * std + mean).round().clamp(0, 255).to(torch.uint8)  # [3, T, H, W]
            info = ds.get_video_info(i)
            out[f"{info['movie']},{info['timestamp']},{seed}"] = {
                "shape": list(clip.shape),
                "pixels": pixels[:, list(STORED_FRAMES), ::PIXEL_STRIDE, ::PIXEL_STRIDE].clone(),
                "boxes": boxes.bbox.clone(),
                "labels": boxes.get_field("labels").clone(),
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "tiny_vmad_ava"))
    args = ap.parse_args()
    shims()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    import alphaction.config.paths_catalog as paths_catalog

    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(os.path.abspath(args.data), os.path.join(tmp, "AVA"))  # VMAD reads <DATA_DIR>/AVA/...
        paths_catalog.DatasetCatalog.DATA_DIR = tmp
        ckpt = write_checkpoint(os.path.join(tmp, "ckpt"))
        raw = torch.load(ckpt, map_location="cpu", weights_only=False)  # our own file, written just now
        layout = {
            "keys": sorted(raw),
            "args_type": type(raw["args"]).__name__,
            "epoch": raw["epoch"],
            "model_keys": sorted(raw["model"]),
        }
        assert all(torch.equal(raw["model"][k], v) for k, v in R.vmad_state_dict().items())
        result = run_test_path(ckpt, os.path.join(tmp, "out"))
        train = training_samples()
    detections = {}
    for key, r in result["ava_results"].items():
        # every action of every box, box-major (VMAD's action threshold is 0): store [boxes, 80]
        n = len(r["scores"]) // 80
        ids = np.asarray(r["action_ids"]).reshape(n, 80)
        assert (ids == np.arange(1, 81)).all()
        boxes = np.asarray(r["boxes"], np.float64).reshape(n, 80, 4)
        assert (boxes == boxes[:, :1]).all()
        detections[key] = {
            "boxes": torch.as_tensor(boxes[:, 0]),
            "scores": torch.as_tensor(np.asarray(r["scores"], np.float64).reshape(n, 80)),
        }
    rows = result["csv"].splitlines()
    assert len(rows) == sum(80 * len(d["boxes"]) for d in detections.values())
    metrics = {k: float(v) for k, v in result["metrics"].items()}
    out = {
        "checkpoint_layout": layout,
        "keyframes": [f"{k['movie']},{k['timestamp']}" for k in result["keyframes"]],
        "detections": detections,
        "csv_head": rows[:3],
        "metrics": metrics,
        "mAP": metrics["PascalBoxes_Precision/mAP@0.5IOU"],
        "train": train,
        "train_stored": {"frames": list(STORED_FRAMES), "stride": PIXEL_STRIDE},
    }
    torch.save(out, args.out)
    print("keyframes", len(out["keyframes"]), "mAP", out["mAP"], "wrote", args.out)


if __name__ == "__main__":
    main()
