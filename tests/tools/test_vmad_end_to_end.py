"""VMAD's own AVA files in, VMAD's numbers out.

``tests/data/tiny_vmad_ava`` is a small dataset in VMAD's processed layout (``datasets/make_tiny_vmad_ava.py``:
25-fps one-second H.264 clips of two sizes, image-info and person-box JSON, CSVs, boxes on both sides of 0.8).
``tests/reference/vmad_e2e_reference.pt`` holds what VMAD's own test path gave on those files with a
checkpoint written by its ``utils.save_model`` (``tests/reference/make_vmad_e2e_reference.py``).
"""

from __future__ import annotations

import json
import pathlib
import random
from collections import defaultdict

import numpy as np
import pytest
import torch
import vmad_reference as R
from cli_table import run_tool
from detectron2.config import LazyConfig, instantiate

from vmae_det.data.ava.catalog import load_vmad_dicts, register_ava_root
from vmae_det.formats.ava import read_ava_csv, read_labelmap
from vmae_det.formats.vmad_layout import inclusive_boxes, read_alphaction_boxes, read_image_info, write_person_boxes

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests/data/tiny_vmad_ava"
REF = torch.load(ROOT / "tests/reference/vmad_e2e_reference.pt", weights_only=True)
ATOL = 1e-4  # the bar for probabilities and mAP


@pytest.fixture(scope="module")
def vmad_checkpoint(tmp_path_factory):
    """A checkpoint in the container VMAD's ``utils.save_model`` writes (checked against the reference)."""
    ckpt = R.vmad_checkpoint(R.vmad_state_dict(), "model")
    layout = REF["checkpoint_layout"]
    assert sorted(ckpt) == layout["keys"] and type(ckpt["args"]).__name__ == layout["args_type"]
    assert sorted(ckpt["model"]) == layout["model_keys"]
    path = tmp_path_factory.mktemp("vmad_ckpt") / "checkpoint-29.pth"
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def eval_run(vmad_checkpoint, tmp_path_factory):
    """The issue's command, with no other override (in this process: run_tool; two threads, a ViT-S forward
    on 5 full-size clips is most of this module's time)."""
    out = tmp_path_factory.mktemp("vmad_e2e_out")
    args = [
        "--config-file",
        str(ROOT / "configs/ava/vit_s.py"),
        "--eval-only",
        "--ava-root",
        str(DATA),
        f"train.init_checkpoint={vmad_checkpoint}",
        f"train.output_dir={out}",
    ]
    proc = run_tool("train_net", args, {"OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout + proc.stderr


def _rows_by_keyframe(rows, keep_ids):
    out = defaultdict(lambda: ([], [], []))
    for vid, ts, box, aid, score in zip(
        rows.str_column("video_ids"),
        rows.str_column("timestamps"),
        rows.boxes.tolist(),
        rows.action_ids.tolist(),
        rows.scores.tolist(),
    ):
        if aid in keep_ids:
            b, a, s = out[f"{vid},{int(ts):04d}"]
            b.append(box), a.append(aid), s.append(score)
    return {k: (np.array(b), np.array(a), np.array(s)) for k, (b, a, s) in out.items()}


def test_eval_only_on_vmad_layout_gives_vmads_probabilities_and_map(eval_run):
    out, log = eval_run
    labels = set(read_labelmap(DATA / "annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt"))
    ours = _rows_by_keyframe(read_ava_csv(out / "inference/ava_detections.csv"), labels)
    ref, cols = {}, np.array(sorted(labels))
    for key, d in REF["detections"].items():  # boxes [n, 4], scores of the 80 actions [n, 80]
        n = len(d["boxes"])
        ref[key] = (
            np.repeat(d["boxes"].numpy(), len(cols), 0),
            np.tile(cols, n),
            d["scores"].numpy()[:, cols - 1].reshape(-1),
        )
    assert sorted(ours) == sorted(ref)  # the same keyframes (VMAD's list: boxes >= 0.8, excluded ones kept)
    assert len(ref) == len(REF["keyframes"]) == 5  # two clip sizes in one test batch
    worst = 0.0
    for key, (b, a, s) in ref.items():
        ob, oa, os_ = ours[key]
        assert oa.tolist() == a.tolist(), key  # same boxes in the same order, every label-map action
        np.testing.assert_allclose(ob, b, rtol=0, atol=1e-5, err_msg=key)  # VMAD's boxes, last pixel added back
        worst = max(worst, float(np.abs(os_ - s).max()))
    assert worst <= ATOL, worst
    # the probabilities spread, so this is no comparison of near-constant numbers
    assert np.std(np.concatenate([s for _, _, s in ref.values()])) > 0.05
    metrics = json.loads((out / "inference/ava_metrics.json").read_text())
    assert abs(metrics["mAP"] - REF["mAP"]) <= ATOL, (metrics["mAP"], REF["mAP"])
    assert metrics["max_detections_per_keyframe"] is None  # the recipe's protocol is VMAD's
    assert "all detections per keyframe" in metrics["detections_per_keyframe"]
    assert "all detections per keyframe" in log


def test_keyframe_order_is_vmads():
    dicts = load_vmad_dicts(DATA, "val")
    assert [f"{d['video_id']},{d['timestamp']}" for d in dicts] == REF["keyframes"]
    assert {d["fps"] for d in dicts} == {25}


@pytest.mark.parametrize("seed", [0, 1])
def test_training_mapper_takes_vmads_frames_and_boxes(seed):
    cfg = LazyConfig.load(str(ROOT / "configs/ava/vit_s.py"))
    cfg.dataloader.train.mapper.gt_box_jitter = None  # VMAD jitters inside its model (tested on its own)
    mapper = instantiate(cfg.dataloader.train.mapper)
    stored = REF["train_stored"]
    for d in load_vmad_dicts(DATA, "train"):
        ref = REF["train"][f"{d['video_id']},{d['timestamp']},{seed}"]
        random.seed(seed)
        out = mapper(d)
        assert list(out["clip"].shape) == ref["shape"]
        ours = out["clip"][:, stored["frames"], :: stored["stride"], :: stored["stride"]].int()
        assert (ours - ref["pixels"].int()).abs().max() <= 1  # one grey level: OpenCV builds differ
        assert (ours != ref["pixels"].int()).float().mean() < 0.25  # ~5 % differ between OpenCV CPU paths
        torch.testing.assert_close(out["boxes"], ref["boxes"], rtol=0, atol=1e-4)
        torch.testing.assert_close(out["labels"], ref["labels"].float(), rtol=0, atol=0)


def test_inclusive_boxes_read_as_vmads_boxlist():
    boxes, keep = inclusive_boxes(
        np.array(
            [[10.0, 20.0, 30.0, 40.0], [630.0, 350.0, 50.0, 50.0], [5.0, 5.0, 0.5, 10.0], [-3.0, -2.0, 10.0, 10.0]]
        ),
        640,
        360,
    )
    px = boxes * np.array([640, 360, 640, 360])
    np.testing.assert_allclose(px[0], [10, 20, 39, 59], atol=1e-4)  # x2 = x + w - 1
    np.testing.assert_allclose(px[1], [630, 350, 639, 359], atol=1e-4)  # clamped to W - 1, H - 1
    np.testing.assert_allclose(px[3], [0, 0, 6, 7], atol=1e-4)
    assert keep.tolist() == [True, True, False, True]  # w - 1 < 0 gives x2 = x1: empty, dropped


def test_person_box_json_round_trips_through_vmads_reading_and_writing(tmp_path):
    info = read_image_info(DATA / "annotations/ava_val_v2.2_min.json")
    box = [0.25, 0.125, 0.75, 0.875]
    write_person_boxes(tmp_path / "b.json", [("valCCCCCCCC", 902, box, 0.9)], info)
    ((norm, _),) = read_alphaction_boxes(tmp_path / "b.json", DATA / "annotations/ava_val_v2.2_min.json").values()
    written = norm[0] + np.array([0, 0, 1 / 640, 1 / 360])  # the evaluation adds the last pixel back
    np.testing.assert_allclose(written, box, atol=1e-6)


def test_missing_2019_label_map_is_refused_not_replaced(tmp_path):
    import shutil

    root = tmp_path / "ava"
    shutil.copytree(DATA, root)
    (root / "annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt").rename(
        root / "annotations/ava_action_list_v2.2.pbtxt"
    )
    with pytest.raises(
        FileNotFoundError, match="ava_action_list_v2.2_for_activitynet_2019.pbtxt.*ava_action_list_v2.2.pbtxt"
    ):
        register_ava_root(root)


def test_missing_vmad_files_are_named(tmp_path):
    import shutil

    root = tmp_path / "ava"
    shutil.copytree(DATA, root)
    (root / "boxes/ava_val_det_person_bbox.json").unlink()
    with pytest.raises(FileNotFoundError, match="ava_val_det_person_bbox.json"):
        register_ava_root(root)
    shutil.rmtree(root / "clips/trainval/valCCCCCCCC")
    write_person_boxes(
        root / "boxes/ava_val_det_person_bbox.json",
        [("valCCCCCCCC", 902, [0.1, 0.1, 0.5, 0.9], 0.9)],
        read_image_info(root / "annotations/ava_val_v2.2_min.json"),
    )
    with pytest.raises(FileNotFoundError, match="valCCCCCCCC"):
        load_vmad_dicts(root, "val")


def test_a_vmad_checkpoint_samples_clips_at_25_fps(vmad_checkpoint):
    from vmae_det.demo import ActionPredictor

    predictor = ActionPredictor.from_config(str(ROOT / "configs/ava/vit_s.py"), str(vmad_checkpoint), device="cpu")
    assert predictor.model_fps == 25.0  # its args.data_set == "ava": AlphAction's 25-fps clips
    again = ActionPredictor.from_config(
        str(ROOT / "configs/ava/vit_s.py"), str(vmad_checkpoint), device="cpu", model_fps=30
    )
    assert again.model_fps == 30.0


def test_builtin_names_read_the_vmad_layout(tmp_path, monkeypatch):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from vmae_det.data.ava.catalog import register_all_ava

    (tmp_path / "ava_vmad").symlink_to(DATA, target_is_directory=True)
    for split in ("train", "val"):  # fresh names: the built-in ones may be registered under another root
        DatasetCatalog.remove(f"ava_vmad_{split}") if f"ava_vmad_{split}" in DatasetCatalog.list() else None
        MetadataCatalog.remove(f"ava_vmad_{split}") if f"ava_vmad_{split}" in MetadataCatalog.list() else None
    register_all_ava(tmp_path)
    val = DatasetCatalog.get("ava_vmad_val")
    assert [f"{d['video_id']},{d['timestamp']}" for d in val] == REF["keyframes"]
    assert len(DatasetCatalog.get("ava_vmad_train")) == 8
    assert MetadataCatalog.get("ava_vmad_val").fps == 25
