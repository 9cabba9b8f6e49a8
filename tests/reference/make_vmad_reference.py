"""Run the official VideoMAE-Action-Detection code (VMAD) on the inputs of ``tests/vmad_reference.py``
and write ``tests/reference/vmad_reference.pt``, the oracle of ``tests/modeling/test_vmad_parity.py``.

Not part of the test suite (VMAD is not a dependency and none of its code is committed here). To
regenerate, with a checkout of https://github.com/MCG-NJU/VideoMAE-Action-Detection and timm 0.4.12
(``pip install --no-deps -t /tmp/refdeps timm==0.4.12``):

    PYTHONPATH=/path/to/VideoMAE-Action-Detection:/tmp/refdeps:tests \\
        .venv/bin/python tests/reference/make_vmad_reference.py --out tests/reference/vmad_reference.pt \\
        --recipes-out tests/reference/vmad_recipes.json

Records, all computed by VMAD's own classes and functions:

* ``probs/<case>``: test-time action probabilities of VMAD's ``vit_small_patch16_224`` AVA model
  (``modeling_finetune.VisionTransformer``, eval mode: ``BoxList.extend((0.1, 0.05))``, RoIAlign,
  max pool, head) on clips normalised by VMAD's ``Normalize`` and padded by its
  ``batch_different_videos(size_divisible=16)``, times the box scores (its ``PostProcessor``);
* ``extend``: ``BoxList.extend((0.1, 0.05))``; ``random_aug/<seed>``: ``BoxList.random_aug(0.2, 0.1,
  0.1, 0.05)`` after ``torch.manual_seed(seed)``;
* ``temporal_crop``: the frames ``TemporalCrop(16, 4)`` keeps of a 64-frame window;
* ``test_transform`` / ``train_transform/<seed>``: VMAD's test and train transforms (``Resize(256, 464)``,
  ``RandomClip``, ``ColorJitter(20, 0.1, 0.1)``, ``RandomHorizontalFlip(0.5)``; train after
  ``random.seed(seed)``) on ``raw_clip()`` and ``raw_boxes()``: shape, boxes, crop, flip, the HSV shifts
  ``ColorJitter`` drew (``hsv_shift``: hue, saturation, value), the sha256 of the whole clip on the machine
  that wrote the file, and its pixels on a sample (``pixels``: uint8 ``[F, H/s, W/s, 3]``, frames
  ``pixel_frames``, every ``pixel_stride``-th row and column from 0): OpenCV's resize and HSV conversions
  round differently with other builds and CPUs (one grey level), so the test compares these pixels with
  a tolerance instead of the hash. About 240 kB in all, where the whole clips would take 15 MB.

The committed file was written on a 2-core AVX-512 machine (opencv-contrib-python-headless 5.1.0.95,
torch 2.14.1, 2 torch threads) with ``OPENCV_CPU_DISABLE=AVX512-SKX,AVX512-CLX`` in the environment, which
reproduces the entries of the earlier file (written without ``pixels``) bit for bit. Without it the train
clips' sha256 differ (their pixels by one grey level on about 5 % of them), and with one torch thread the
two-clip probabilities by ~2e-7: both within the test's tolerances.

With ``--recipes-out`` it also writes the AVA recipes of VMAD's ``scripts/ava/*/run.sh`` (the argument
values, GPUs = 8 x nnodes) and the mAP its ``MODEL_ZOO.md`` lists for each script, as JSON, the oracle of
``tests/test_config.py``; options a script does not pass take ``run_class_finetuning.py``'s defaults.
"""

from __future__ import annotations

import argparse
import hashlib
import random

import numpy as np
import torch
import vmad_reference as R  # tests/vmad_reference.py (on PYTHONPATH)

PIXEL_FRAMES = [0, 5, 10, 15]  # first and last frame of the 16 and two between
PIXEL_STRIDE = 4  # every 4th row and column: 1/64 of a clip's pixels


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def pixel_sample(clip: np.ndarray) -> dict:
    """The pixels of ``clip`` the parity test compares (and how they were taken)."""
    sample = np.ascontiguousarray(np.asarray(clip)[PIXEL_FRAMES, ::PIXEL_STRIDE, ::PIXEL_STRIDE])
    return {"pixels": torch.from_numpy(sample), "pixel_frames": list(PIXEL_FRAMES), "pixel_stride": PIXEL_STRIDE}


class RecordShifts:
    """``ColorJitter`` as VMAD runs it, recording the shifts it drew: the same three ``random.randint``
    calls in its order (hue, saturation, value), replayed from the generator state it started with."""

    def __init__(self, jitter):
        self.jitter, self.shifts = jitter, None

    def __call__(self, clip, target, randoms):
        before = random.getstate()
        out = self.jitter(clip, target, randoms)
        after = random.getstate()
        random.setstate(before)
        j = self.jitter
        self.shifts = [random.randint(-b, b) for b in (j.hue_bound, j.sat_bound, j.val_bound)]
        if random.getstate() != after:
            raise RuntimeError("VMAD's ColorJitter draws other random numbers than hue, saturation, value")
        return out


def read_recipes(vmad_root: str) -> dict:
    """``{script folder: {lr, layer_decay, epochs, batch_size, gpus, drop_path, use_checkpoint, ...}}``."""
    import glob
    import os
    import re

    # run_class_finetuning.py's argparse defaults of the options no script sets
    source = open(os.path.join(vmad_root, "run_class_finetuning.py")).read()
    defaults = {}
    for opt in ("warmup_epochs", "min_lr", "warmup_lr", "init_scale", "clip_grad", "opt_eps"):
        m = re.search(r"'--" + opt + r"',[^\n]*?default=([^,\)]+)", source)
        defaults[opt] = None if m.group(1) == "None" else float(m.group(1))
    recipes = {"_defaults": defaults}
    zoo = open(os.path.join(vmad_root, "MODEL_ZOO.md")).read()
    for script in sorted(glob.glob(os.path.join(vmad_root, "scripts/ava/*/run.sh"))):
        text = open(script).read().replace("\\\n", " ")
        name = os.path.basename(os.path.dirname(script))
        flags = dict(re.findall(r"--(\w+)(?:[ =]+([^\s-][^\s]*(?: [0-9.]+)*))?", text))
        nnodes = int(flags.get("nnodes", 1))
        nproc = int(flags.get("nproc_per_node", 1))
        row = re.search(r"scripts/ava/" + re.escape(name) + r"/run\.sh\).*?\|\s*([0-9.]+)\s*\|", zoo)
        recipes[name] = {
            "lr": float(flags["lr"]),
            "layer_decay": float(flags["layer_decay"]),
            "epochs": int(flags["epochs"]),
            "batch_size_per_gpu": int(flags["batch_size"]),
            "gpus": nnodes * nproc,
            "drop_path": float(flags["drop_path"]),
            "weight_decay": float(flags["weight_decay"]),
            "opt_betas": [float(v) for v in flags["opt_betas"].split()],
            "use_checkpoint": "use_checkpoint" in flags,
            "num_frames": int(flags["num_frames"]),
            "sampling_rate": int(flags["sampling_rate"]),
            "val_freq": int(flags["val_freq"]),
            "map": float(row.group(1)) if row else None,
        }
    return recipes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--recipes-out", default=None)
    ap.add_argument("--vmad", default=None, help="VMAD checkout (default: the first PYTHONPATH entry)")
    args = ap.parse_args()
    if args.recipes_out:
        import json
        import os

        root = args.vmad or os.environ["PYTHONPATH"].split(os.pathsep)[0]
        with open(args.recipes_out, "w") as f:
            json.dump(read_recipes(root), f, indent=1, sort_keys=True)
        print("wrote", args.recipes_out)

    import modeling_finetune as mf  # VMAD
    from alphaction.dataset.collate_batch import batch_different_videos
    from alphaction.dataset.transforms import video_transforms as T
    from alphaction.structures.bounding_box import BoxList

    out: dict = {"probs": {}, "random_aug": {}, "train_transform": {}}
    torch.manual_seed(0)
    model = mf.vit_small_patch16_224(num_classes=R.NUM_CLASSES, all_frames=R.NUM_FRAMES, init_scale=0.001)
    model.load_state_dict(R.vmad_state_dict(), strict=True)
    model.eval()
    normalize = T.Normalize(mean=R.VMAD_PIXEL_MEAN, std=R.VMAD_PIXEL_STD, to_bgr=False)

    for name in R.CASES:
        clips, boxlists = [], []
        for inp in R.case_inputs(name):
            clip = inp["clip"].float()  # [3, T, H, W], as VMAD's ToTensor gives
            clip, _, _ = normalize(clip, None, {})
            clips.append(clip)
            h, w = inp["clip"].shape[-2:]
            b = BoxList(inp["boxes"].clone(), (w, h), mode="xyxy")
            b.add_field("scores", inp["scores"].reshape(-1, 1))
            boxlists.append(b)
        videos = batch_different_videos(clips, 16)
        with torch.no_grad():
            logits = model(videos, boxlists)
        scores = torch.cat([b.get_field("scores") for b in boxlists]).reshape(-1, 1)
        out["probs"][name] = (torch.sigmoid(logits) * scores).split([len(b) for b in boxlists])
        out["probs"][name] = [p.clone() for p in out["probs"][name]]
        print(name, tuple(videos.shape), [tuple(p.shape) for p in out["probs"][name]])

    boxes, (h, w) = R.box_inputs()
    out["extend"] = BoxList(boxes.clone(), (w, h)).extend((0.1, 0.05)).bbox.clone()
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        out["random_aug"][seed] = BoxList(boxes.clone(), (w, h)).random_aug(0.2, 0.1, 0.1, 0.05).bbox.clone()

    window = np.arange(64)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    kept, _, _ = T.TemporalCrop(16, 4)(window.astype(np.uint8), None, {})
    out["temporal_crop"] = torch.as_tensor(kept[:, 0, 0, 0].astype(np.int64))

    raw = R.raw_clip()
    rh, rw = raw.shape[1:3]

    def run(transforms, clip):
        target = BoxList(torch.as_tensor(R.raw_boxes()), (rw, rh), mode="xyxy")
        randoms: dict = {}
        for t in transforms:
            clip, target, randoms = t(clip, target, randoms)
        return clip, target, randoms

    clip, target, _ = run([T.Resize(256, 464)], raw[:16])
    out["test_transform"] = {
        "shape": list(clip.shape),
        "sha256": sha(clip),
        "boxes": target.bbox.clone(),
        **pixel_sample(clip),
    }
    for seed in (0, 1, 2, 3):
        random.seed(seed)
        crop = T.RandomClip(True)
        jitter = RecordShifts(T.ColorJitter(20.0, 0.1, 0.1))
        clip, target, randoms = run([T.Resize(256, 464), crop, jitter, T.RandomHorizontalFlip(0.5)], raw[:16])
        h2, w2 = 256, int(256 * rw / rh)
        out["train_transform"][seed] = {
            "shape": list(clip.shape),
            "sha256": sha(clip),
            "boxes": target.bbox.clone(),
            "crop_xy": [int(crop.tl_x * (w2 - 224)), int(crop.tl_y * (h2 - 224))],
            "flipped": bool(randoms["Flip"] < 0.5),
            "hsv_shift": jitter.shifts,
            **pixel_sample(clip),
        }
        print(
            "train seed",
            seed,
            out["train_transform"][seed]["crop_xy"],
            out["train_transform"][seed]["flipped"],
            jitter.shifts,
        )
    torch.save(out, args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
