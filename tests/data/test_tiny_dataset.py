"""Tests for vmae_det.synthetic.ava: layout, file formats, and that labels match the pixels."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from vmae_det.synthetic import ava as gen

REPO = Path(__file__).resolve().parents[2]
SECONDS = 4
N_TRAIN, N_VAL = 2, 1


@pytest.fixture(scope="module")
def root(tiny_ava_factory) -> Path:
    return tiny_ava_factory(seed=0, num_train_videos=N_TRAIN, num_val_videos=N_VAL, seconds=SECONDS)


def _rows(path: Path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _video_ids(split: str):
    return [f"tiny{split}{i:03d}" for i in range({"train": N_TRAIN, "val": N_VAL}[split])]


def _frame(root: Path, vid: str, index0: int) -> np.ndarray:
    """RGB frame at 0-based index from the extracted JPEGs."""
    img = cv2.imread(str(root / "frames" / vid / f"{vid}_{index0 + 1:06d}.jpg"))
    assert img is not None
    return img[..., ::-1].astype(np.int32)


def _saturated(img: np.ndarray) -> np.ndarray:
    return (img.max(-1) - img.min(-1)) > 80  # background is grey, figures are saturated


def test_layout(root: Path):
    ann = root / "annotations"
    for split in ("train", "val"):
        for name in (
            f"ava_{split}_v2.2.csv",
            f"ava_{split}_excluded_timestamps_v2.2.csv",
            f"ava_{split}_predicted_boxes.csv",
        ):
            assert (ann / name).is_file(), name
        assert (root / "frame_lists" / f"{split}.csv").is_file()
        for vid in _video_ids(split):
            assert (root / "videos" / f"{vid}.mp4").is_file()
            jpgs = sorted((root / "frames" / vid).glob("*.jpg"))
            assert len(jpgs) == SECONDS * gen.FPS
            assert jpgs[0].name == f"{vid}_000001.jpg"
            assert jpgs[-1].name == f"{vid}_{SECONDS * gen.FPS:06d}.jpg"
            h, w = cv2.imread(str(jpgs[0])).shape[:2]
            assert (w, h) == (128, 96)
    assert (ann / "ava_action_list_v2.2_for_activitynet_2019.pbtxt").is_file()
    assert "walk left" in (root / "README.txt").read_text()


def test_pbtxt_format(root: Path):
    text = (root / "annotations" / "ava_action_list_v2.2_for_activitynet_2019.pbtxt").read_text()
    blocks = re.findall(r'label \{\s*name: "([^"]+)"\s*label_id: (\d+)\s*label_type: (\w+)\s*\}', text)
    assert {int(i): n for n, i, _ in blocks} == gen.CLASSES
    assert all(t == "PERSON_MOVEMENT" for _, _, t in blocks)


def test_csv_formats(root: Path):
    num_frames = SECONDS * gen.FPS
    keyframes = [s for s in range(902, 900 + SECONDS) if (s - 900) * 30 + 8 < num_frames]
    for split in ("train", "val"):
        ann = root / "annotations"
        gt = _rows(ann / f"ava_{split}_v2.2.csv")
        assert gt
        for row in gt:
            assert len(row) == 8
            assert row[0] in _video_ids(split)
            assert re.fullmatch(r"\d{4}", row[1]) and int(row[1]) in keyframes
            assert all(re.fullmatch(r"[01]\.\d{3}", v) for v in row[2:6])
            x1, y1, x2, y2 = map(float, row[2:6])
            assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
            assert int(row[6]) in gen.CLASSES and int(row[7]) >= 0
        props = _rows(ann / f"ava_{split}_predicted_boxes.csv")
        scores = np.array([float(r[7]) for r in props])
        for row in props:  # SlowFast: video,sec,x1,y1,x2,y2,<empty action>,score
            assert len(row) == 8 and row[6] == ""
            x1, y1, x2, y2 = map(float, row[2:6])
            assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        assert (scores >= 0.8).sum() == len({(r[0], r[1], r[7]) for r in gt})  # one per GT person
        assert 0 < (scores < 0.8).sum() < (scores >= 0.8).sum()  # a few low-score false positives
        excl = _rows(ann / f"ava_{split}_excluded_timestamps_v2.2.csv")
        assert len(excl) >= 1 and all(len(r) == 2 and int(r[1]) in keyframes for r in excl)
        lines = (root / "frame_lists" / f"{split}.csv").read_text().splitlines()
        assert lines[0] == "original_vido_id video_idx frame_id path labels"
        assert len(lines) - 1 == len(_video_ids(split)) * num_frames
        n = len(_video_ids(split))
        vid, idx, fid, path, labels = lines[1 + (n - 1) * num_frames].split(" ")
        assert (vid, idx, fid, labels) == (_video_ids(split)[-1], str(n - 1), "0", '""')
        assert (root / "frames" / path).is_file()


def _gt_by_person(root: Path, split: str):
    out = defaultdict(set)
    boxes = {}
    for row in _rows(root / "annotations" / f"ava_{split}_v2.2.csv"):
        key = (row[0], int(row[1]), int(row[7]))
        out[key].add(int(row[6]))
        boxes[key] = tuple(map(float, row[2:6]))
    return out, boxes


def test_labels_multilabel_and_pose_exclusive(root: Path):
    acts, _ = _gt_by_person(root, "train")
    acts_val, _ = _gt_by_person(root, "val")
    acts.update(acts_val)
    assert all(len(a & {1, 2, 3}) == 1 for a in acts.values())
    assert any(len(a) > 1 for a in acts.values()), "no multi-label rows"
    seen = set().union(*acts.values())
    assert {1, 2, 3} <= seen and (4 in seen or 5 in seen)


def test_boxes_cover_figures_and_actions_match_motion(root: Path):
    """Each GT box tightly covers one figure at its keyframe; walk labels match pixel motion."""
    acts, boxes = _gt_by_person(root, "train")
    checked = 0
    for (vid, sec, pid), (x1, y1, x2, y2) in boxes.items():
        f = (sec - 900) * 30
        img = _frame(root, vid, f)
        sat = _saturated(img)
        bx1, by1, bx2, by2 = round(x1 * 128), round(y1 * 96), round(x2 * 128), round(y2 * 96)
        inside = sat[by1:by2, bx1:bx2]
        assert inside.mean() > 0.25, (vid, sec, pid)
        colour = img[by1:by2, bx1:bx2][inside].mean(0)

        def mask_at(frame_idx: int) -> np.ndarray:
            im = _frame(root, vid, frame_idx)
            return _saturated(im) & (np.abs(im - colour).max(-1) < 60)

        # Nothing of this figure's colour lies outside its box (2 px slack for JPEG and rounding).
        m = mask_at(f)
        m[max(0, by1 - 2) : by2 + 2, max(0, bx1 - 2) : bx2 + 2] = False
        assert m.sum() <= 2, (vid, sec, pid, m.sum())
        # Motion over the +-8 frames of the default clip agrees with the label.
        xs = [np.nonzero(mask_at(g))[1].min() for g in (f - 8, f + 8)]  # body's left edge
        dx = xs[1] - xs[0]
        pose = (acts[(vid, sec, pid)] & {1, 2, 3}).pop()
        if pose == 1:
            assert dx <= -18, (vid, sec, pid, dx)
        elif pose == 2:
            assert dx >= 18, (vid, sec, pid, dx)
        else:
            assert abs(dx) <= 2, (vid, sec, pid, dx)
        checked += 1
    assert checked >= 10


def test_videos_decode_to_frame_count(root: Path):
    decord = pytest.importorskip("decord")
    av = pytest.importorskip("av")
    for vid in _video_ids("train") + _video_ids("val"):
        path = str(root / "videos" / f"{vid}.mp4")
        n_frames = len(list((root / "frames" / vid).glob("*.jpg")))
        vr = decord.VideoReader(path)
        assert len(vr) == n_frames
        with av.open(path) as container:
            n_av = sum(1 for _ in container.decode(video=0))
        assert n_av == n_frames
        # Same pictures, up to codec loss.
        key = (902 - 900) * 30
        diff = np.abs(vr[key].asnumpy().astype(np.int32) - _frame(root, vid, key)).mean()
        assert diff < 12


def test_deterministic_and_idempotent(root: Path, tmp_path: Path):
    gt = root / "annotations" / "ava_train_v2.2.csv"
    mtime = gt.stat().st_mtime_ns
    gen.make_tiny_ava(root, seed=0, num_train_videos=N_TRAIN, num_val_videos=N_VAL, seconds=SECONDS)
    assert gt.stat().st_mtime_ns == mtime  # complete: skipped
    other = gen.make_tiny_ava(
        tmp_path / "t", seed=0, num_train_videos=N_TRAIN, num_val_videos=N_VAL, seconds=SECONDS, format="frames"
    )
    assert (other / "annotations" / "ava_train_v2.2.csv").read_text() == gt.read_text()
    assert not (other / "videos").exists()
    seed1 = gen.make_tiny_ava(
        tmp_path / "s1", seed=1, num_train_videos=N_TRAIN, num_val_videos=N_VAL, seconds=SECONDS, format="frames"
    )
    assert (seed1 / "annotations" / "ava_train_v2.2.csv").read_text() != gt.read_text()
    with pytest.raises(ValueError, match="format"):
        gen.make_tiny_ava(tmp_path / "bad", format="gif")


def test_large_figures_cover_more_of_the_frame(root: Path, tmp_path: Path):
    """--figures large (the quick start's sets): 1-2 people, taller boxes, several times the figure pixels."""
    large = gen.make_tiny_ava(
        tmp_path / "large",
        seed=0,
        num_train_videos=N_TRAIN,
        num_val_videos=N_VAL,
        seconds=SECONDS,
        format="frames",
        figures="large",
    )
    assert "--figures large" in (large / "README.txt").read_text()
    _, boxes = _gt_by_person(large, "train")
    people = defaultdict(set)
    for vid, _, pid in boxes:
        people[vid].add(pid)
    assert all(1 <= len(p) <= 2 for p in people.values()), people
    assert min(y2 - y1 for _, y1, _, y2 in boxes.values()) * 96 >= 20  # at least half a 2-person lane
    key = (902 - 900) * 30

    def figure_fraction(r: Path) -> float:
        return float(np.mean([_saturated(_frame(r, vid, key)).mean() for vid in _video_ids("train")]))

    assert figure_fraction(large) > 2 * figure_fraction(root)
    with pytest.raises(ValueError, match="figures"):
        gen.make_tiny_ava(tmp_path / "bad", figures="huge")


def test_plain_background_has_no_texture_and_keeps_the_labels_consistent(root: Path, tmp_path: Path):
    """--background plain (the quick start's sets): one colour plus a gradient, no noise; figures and boxes
    follow the same rules, and the default dataset's marker does not mention the option."""
    plain = gen.make_tiny_ava(
        tmp_path / "plain",
        seed=0,
        num_train_videos=N_TRAIN,
        num_val_videos=N_VAL,
        seconds=SECONDS,
        format="frames",
        background="plain",
    )
    assert "--background plain" in (plain / "README.txt").read_text()
    assert json.loads((plain / ".complete.json").read_text())["background"] == "plain"
    assert "background" not in json.loads((root / ".complete.json").read_text())
    key = (902 - 900) * 30

    def background_roughness(r: Path) -> float:
        """Median distance of a pixel from its 7x7 neighbourhood's mean: the noise texture's grain (a linear
        gradient has none; figures are too few pixels to move the median)."""
        values = []
        for vid in _video_ids("train"):
            img = _frame(r, vid, key).astype(np.float32)
            values.append(np.median(np.abs(img - cv2.blur(img, (7, 7))).max(-1)))
        return float(np.median(values))

    assert background_roughness(plain) < 0.4 * background_roughness(root)
    _, boxes = _gt_by_person(plain, "train")
    assert boxes and all(0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 for x1, y1, x2, y2 in boxes.values())
    with pytest.raises(ValueError, match="background"):
        gen.make_tiny_ava(tmp_path / "bad", background="sky")
