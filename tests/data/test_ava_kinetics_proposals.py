"""Person boxes for the Kinetics keyframes of AVA-Kinetics (``tools/make_proposals.py --dataset``): the detector
sees each keyframe's frame, the CSV keeps the annotation file's timestamps, the registered dataset reads it back
as its proposals and the evaluator scores detections on them; checkpoints, ``--resume`` and bad inputs (all
in-process, a fake detector or OpenCV's HOG)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from vmae_det.cli import EXPECTED_ERRORS
from vmae_det.data.ava import AVAClipMapper
from vmae_det.data.ava.kinetics import find_clip, kinetics_clip_index, register_ava_kinetics
from vmae_det.data.ava.kinetics_proposals import collect_kinetics_keyframes, make_kinetics_person_boxes
from vmae_det.data.proposals import partial_path
from vmae_det.data.video_io import VideoDecodeError
from vmae_det.evaluation import AVAEvaluator
from vmae_det.evaluation.ava_map import evaluate
from vmae_det.formats.ava import kinetics_file_names, read_ava_csv, read_labelmap
from vmae_det.formats.ava_boxes import read_proposals
from vmae_det.synthetic.ava_kinetics import make_tiny_ava_kinetics
from vmae_det.tools import make_proposals as tool

NAME = "ava_kinetics_proposals_test_val"
PIXEL_BOX = np.array([[10, 20, 50, 90]], np.float32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_ava_kinetics(tmp_path_factory.mktemp("datasets") / "tiny_ava_kinetics")


@pytest.fixture
def root(tiny, tmp_path):
    """A copy of the tiny set without the generator's Kinetics val boxes, registered (AVA + Kinetics) as NAME."""
    copy = tmp_path / "tiny_ava_kinetics"
    shutil.copytree(tiny, copy)
    (copy / "annotations" / kinetics_file_names("val")["proposals"]).unlink()
    register_ava_kinetics(NAME, copy, "val", num_classes=5)
    yield copy
    DatasetCatalog.remove(NAME)
    MetadataCatalog.remove(NAME)


def _boxes_file(root: Path) -> Path:
    return root / "annotations" / kinetics_file_names("val")["proposals"]


def _listed(root: Path):
    """``[(youtube_id, timestamp as written, clip or None)]`` of the val file, read with the csv module."""
    clips = kinetics_clip_index(root / "kinetics")
    rows = [line.split(",") for line in (root / "annotations" / "kinetics_val_v1.0.csv").read_text().splitlines()]
    keys = list(dict.fromkeys((r[0], r[1]) for r in rows))
    return [(v, t, find_clip(clips.get(v, ()), float(t))) for v, t in keys]


def _decoded(path: str):
    cap, frames = cv2.VideoCapture(path), []
    ok, img = cap.read()
    while ok:
        frames.append(img[..., ::-1])
        ok, img = cap.read()
    cap.release()
    return frames


def _detector(frames_seen=None, nobody_on=(), stop_on=None):
    """One person (score 0.9) and one below 0.5 on every frame; nobody on the calls in ``nobody_on``."""
    seen = [] if frames_seen is None else frames_seen

    def detect(frame):
        seen.append(frame.copy())
        if len(seen) == stop_on:
            raise KeyboardInterrupt
        if len(seen) in nobody_on:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        return np.concatenate([PIXEL_BOX, [[0, 0, 8, 8]]]), np.array([0.9, 0.2], np.float32)

    return detect


def _kinetics(dicts):
    return [d for d in dicts if "start_sec" in d]


def test_boxes_on_the_keyframe_frames_become_the_datasets_proposals_and_detections(root):
    listed = _listed(root)
    present = [(v, t, c) for v, t, c in listed if c is not None]
    assert 0 < len(present) < len(listed)  # the generator lists one clip that is not there
    assert not any(len(d["proposals"]["scores"]) for d in _kinetics(DatasetCatalog.get(NAME)))  # no file yet
    seen = []
    jobs, stats = collect_kinetics_keyframes(NAME)
    assert stats == dict(keyframes=len(present), missing_clips=1, skipped_keyframes=len(listed) - len(present))
    n = make_kinetics_person_boxes(NAME, _boxes_file(root), _detector(seen), min_score=0.5, jobs=(jobs, stats))
    assert n["detected_keyframes"] == n["boxes"] == len(present) and n["clips"] == len(jobs)
    # the detector saw frame round((t - start) * 30) of each keyframe's clip (docs/ava_kinetics.md)
    assert len(seen) == len(present)
    for (vid, t, clip), frame in zip(present, seen):
        np.testing.assert_array_equal(frame, _decoded(clip.path)[round((float(t) - clip.start) * 30)])
    h, w = seen[0].shape[:2]
    # the CSV: AVA's predicted-boxes layout, the timestamps as the annotation file writes them
    rows = read_ava_csv(_boxes_file(root), columns=(8,), optional_action=True, keep_text=True)
    assert [(r[0], r[1]) for r in rows.text] == [(v, t) for v, t, _ in present] and not rows.empty_frames
    assert all(r[6] == "" and r[7] == "0.900000" for r in rows.text)
    want = np.round(PIXEL_BOX / [w, h, w, h], 3).astype(np.float32)
    # the registered dataset reads them as its Kinetics proposals, the keyframe without people in the GT included
    kin = _kinetics(DatasetCatalog.get(NAME))
    assert sorted((d["video_id"], d["timestamp"]) for d in kin) == sorted((v, float(t)) for v, t, _ in present)
    for d in kin:
        np.testing.assert_allclose(d["proposals"]["boxes"], want, atol=1e-6)
        np.testing.assert_allclose(d["proposals"]["scores"], [0.9], rtol=1e-6)
    # the test mapper puts them in the model's input; the evaluator scores them on the Kinetics keyframes
    meta = MetadataCatalog.get(NAME)
    mapper = AVAClipMapper(is_train=False, num_classes=5, num_frames=1, augmentations=[])
    ev = AVAEvaluator(
        label_map_file=meta.label_map_file,
        groundtruth_csv=meta.groundtruth_csv,
        protocol="2020",
        distributed=False,
        max_detections_per_keyframe=None,
    )
    for d in kin:
        x = mapper(d)
        ch, cw = x["clip_size"]
        boxes = x["boxes"].numpy() / [cw, ch, cw, ch]
        np.testing.assert_allclose(boxes, want, atol=1e-5)
        ev.process(
            [{"video_id": d["video_id"], "timestamp": d["timestamp"]}], [{"boxes": boxes, "scores": np.ones((1, 5))}]
        )
    dets = ev.detections()
    keys = set(zip(dets.str_column("video_ids"), dets.str_column("timestamps")))
    assert keys == {(v, f"{float(t)!r}") for v, t, _ in present}
    labels = read_labelmap(meta.label_map_file)
    result = evaluate(read_ava_csv(meta.groundtruth_csv), dets, labels, None, "2020", max_detections_per_keyframe=None)
    assert result.stats["ignored_detections_unknown_keyframes"] == 0  # every Kinetics key meets the scored file's


def test_checkpoint_and_resume_run_only_unfinished_clips(root):
    out = _boxes_file(root)
    jobs = collect_kinetics_keyframes(NAME)
    sizes = [len(j.timestamps) for j in jobs[0]]
    assert sizes[0] == 2 and len(sizes) >= 3  # the first clip holds two keyframes
    first_two = sizes[0] + sizes[1]
    nobody = (first_two,)  # the second clip's keyframe shows no one
    with pytest.raises(KeyboardInterrupt):
        make_kinetics_person_boxes(
            NAME, out, _detector(nobody_on=nobody, stop_on=first_two + 1), min_score=0.5, jobs=jobs
        )
    assert not out.exists()
    part = read_ava_csv(partial_path(out), columns=(2, 8), optional_action=True)
    second = (jobs[0][1].clip.youtube_id, jobs[0][1].timestamps[0])
    assert part.empty_frames == [second] and len(part) == sizes[0]  # the keyframe without people is marked done
    seen = []
    n = make_kinetics_person_boxes(NAME, out, _detector(seen), min_score=0.5, jobs=jobs, resume=True)
    assert len(seen) == sum(sizes[2:]) and n["clips"] == len(sizes) and not partial_path(out).exists()
    assert n["detected_keyframes"] == sum(sizes) - 1
    first = out.read_text()
    assert second[0] not in first and len(read_proposals(out, integer_timestamps=False)) == sum(sizes) - 1
    seen.clear()  # a finished file: only the keyframe without people (not in the CSV) runs again
    make_kinetics_person_boxes(NAME, out, _detector(seen, nobody_on=(1,)), min_score=0.5, jobs=jobs, resume=True)
    assert len(seen) == 1 and out.read_text() == first
    seen.clear()
    make_kinetics_person_boxes(NAME, out, _detector(seen), min_score=0.5, jobs=jobs)
    assert len(seen) == sum(sizes)


def _error(argv, exc=EXPECTED_ERRORS):
    with pytest.raises(exc) as e:
        tool.main(argv)
    assert isinstance(e.value, EXPECTED_ERRORS) and "\n" not in str(e.value)
    return str(e.value.args[0]) if isinstance(e.value, KeyError) else str(e.value)


def test_cli_writes_the_file_the_dataset_reads_and_refuses_bad_inputs(root, capsys, caplog):
    out = _boxes_file(root)
    assert tool.main(["--dataset", NAME, "--detector", "hog", "--output", str(out)]) == 0  # no download
    printed = capsys.readouterr().out
    assert printed.startswith("wrote ") and "skipped: 1 keyframe(s) of 1 missing clip(s)" in printed
    assert "1 Kinetics video(s) have no clip" in caplog.text  # the dataset's warning
    read_proposals(out, integer_timestamps=False)
    base = ["--detector", "hog", "--output", str(out)]
    assert _error(["--dataset", NAME, "--frame-stride", "2", *base]).startswith("--frame-stride goes with an ACT")
    message = _error(["--dataset", "kinetics_val", *base], KeyError)
    assert "nor an AVA-Kinetics one" in message and "kinetics_ava_val" in message and "ucf24_tiny_test" in message
    # a clip shorter than its name says: named, or skipped and counted with --skip-bad-videos
    clip = next(c for _, _, c in _listed(root) if c is not None and c.start >= 9)
    shorter = Path(clip.path).with_name(f"{clip.youtube_id}_{clip.start - 9:06d}_{clip.end:06d}.mp4")
    Path(clip.path).rename(shorter)
    message = _error(["--dataset", NAME, *base], VideoDecodeError)
    assert f"cannot decode video '{shorter}'" in message and "truncated download" in message
    assert "--skip-bad-videos" in message
    assert tool.main(["--dataset", NAME, "--skip-bad-videos", *base]) == 0
    assert "1 undecodable clip(s)" in capsys.readouterr().out
    # no clip at all
    shutil.rmtree(root / "kinetics")
    assert "has its clip under" in _error(["--dataset", NAME, *base], FileNotFoundError)
    with contextlib.suppress(FileNotFoundError):
        partial_path(out).unlink()
