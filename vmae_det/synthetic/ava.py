"""Generate ``tiny_ava``, a tiny synthetic dataset in the exact AVA v2.2 layout (one module: one seed drives it all).

The default of the quick start, the tests and the demo (``docs/architecture.md``); it exercises every reader
(exclusions, proposals, frame lists, frames and videos) without downloads. Figures look the same whatever they do,
so actions are only recognisable from motion; actions change at half-second boundaries, so the clip around each
keyframe sees a single action set. The command line is ``datasets/make_tiny_ava.py``.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from ..constants import AVA_FIRST_KEYFRAME_SEC, AVA_FPS, AVA_START_SEC
from ..formats.atomic import atomic_save
from ..formats.ava import annotation_file_names, format_ava_row, frame_file_name, write_ava_csv, write_labelmap
from ..formats.video_writer import VideoWriter

__all__ = [
    "make_tiny_ava",
    "CLASSES",
    "FPS",
    "WIDTH",
    "HEIGHT",
    "START_SEC",
    "render_video",
    "Figure",
    "draw_figure",
    "draw_background",
    "figure_box",
    "normalised_box",
    "detector_boxes",
    "segment_of",
    "write_mp4",
]

FPS = AVA_FPS
WIDTH, HEIGHT = 128, 96
START_SEC = AVA_START_SEC  # AVA's 15-minute crops start at second 900 of the movie
FIRST_KEYFRAME_SEC = AVA_FIRST_KEYFRAME_SEC  # first annotated second in AVA
CLIP_HALF_SPAN = 8  # frames either side of a keyframe a default clip (8 frames, stride 2) touches

CLASSES: Dict[int, str] = {1: "walk left", 2: "walk right", 3: "stand", 4: "jump", 5: "wave"}
WALK_LEFT, WALK_RIGHT, STAND, JUMP, WAVE = 1, 2, 3, 4, 5

# Saturated colours far from the grey background so tests can find figures by colour.
PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (220, 40, 40),
    (40, 200, 60),
    (50, 80, 230),
    (230, 200, 30),
    (200, 50, 200),
    (30, 200, 210),
)  # RGB
WALK_SPEED = 1.5  # px / frame: 24 px over a 16-frame clip, plainly visible
JUMP_PERIOD, JUMP_HEIGHT = 10, 5  # frames, px
WAVE_PERIOD = 8  # frames
ARM_MIN, ARM_MAX = math.radians(20), math.radians(160)  # arm angle from "straight down"
MARGIN = 2  # px kept free at the image border

FORMAT_PARTS = {"frames": {"frames"}, "videos": {"videos"}, "both": {"frames", "videos"}}
_MARKER = ".complete.json"
FIGURES = {"small": (2, 4), "large": (1, 3)}  # figure style -> [low, high) number of people per video
BACKGROUNDS = ("texture", "plain")


@dataclass
class Figure:
    """Static look of one synthetic person (sizes in pixels)."""

    color: Tuple[int, int, int]
    height: int  # feet to top of head
    lane_top: int  # the vertical band the figure lives in (no overlap between figures)
    lane_bottom: int
    body_frac: float = 0.25  # body width / height
    limb: int = 2  # arm thickness

    @property
    def body_w(self) -> int:
        return max(4, round(self.height * self.body_frac))

    @property
    def head_r(self) -> int:
        return max(2, round(self.height * 0.12))

    @property
    def arm_len(self) -> int:
        return max(4, round(self.height * 0.35))

    @property
    def half_extent(self) -> int:
        """Largest horizontal distance from the centre line to a drawn pixel (arm stretched)."""
        return max(self.body_w // 2, self.arm_len) + 1


def segment_of(frame: int) -> int:
    """Second index (0 = second 900) whose half-open window [s-0.5, s+0.5) holds ``frame``."""
    return (frame + FPS // 2) // FPS


def _plan_person(rng: np.random.Generator, fig: Figure, num_frames: int):
    """Choose per-second action sets and integrate the motion: ``(actions, cx, feet_y, arm)``, per segment and
    per frame."""
    num_segments = segment_of(num_frames - 1) + 1
    jump_room = JUMP_HEIGHT if fig.lane_bottom - fig.lane_top - fig.height > JUMP_HEIGHT else 0
    base_feet = int(rng.integers(fig.lane_top + fig.height + jump_room, fig.lane_bottom + 1))
    lo, hi = MARGIN + fig.half_extent, WIDTH - 1 - MARGIN - fig.half_extent
    x = float(rng.uniform(lo, hi))
    actions: List[List[int]] = []
    cx = np.zeros(num_frames, np.float64)
    feet = np.zeros(num_frames, np.int64)
    arm = np.zeros(num_frames, np.float64)
    for s in range(num_segments):
        first = max(0, s * FPS - FPS // 2)
        last = min(num_frames, s * FPS + FPS // 2)
        n = last - first
        # Pick a pose the figure can hold for the whole segment without leaving the frame.
        travel = WALK_SPEED * n
        poses = [STAND]
        if x - travel >= lo:
            poses.append(WALK_LEFT)
        if x + travel <= hi:
            poses.append(WALK_RIGHT)
        pose = int(rng.choice(poses))
        acts = [pose]
        if jump_room and rng.random() < 0.3:
            acts.append(JUMP)
        if rng.random() < 0.3:
            acts.append(WAVE)
        actions.append(acts)
        still_arm = float(rng.uniform(ARM_MIN, ARM_MAX))
        phase = float(rng.uniform(0, 2 * math.pi))
        for i, f in enumerate(range(first, last)):
            step = {WALK_LEFT: -WALK_SPEED, WALK_RIGHT: WALK_SPEED}.get(pose, 0.0)
            cx[f] = x + step * i
            hop = JUMP_HEIGHT * abs(math.sin(math.pi * i / JUMP_PERIOD)) if JUMP in acts else 0.0
            feet[f] = base_feet - round(hop)
            if WAVE in acts:
                mid, amp = (ARM_MIN + ARM_MAX) / 2, (ARM_MAX - ARM_MIN) / 2
                arm[f] = mid + amp * math.sin(2 * math.pi * i / WAVE_PERIOD + phase)
            else:
                arm[f] = still_arm
        x = x + {WALK_LEFT: -WALK_SPEED, WALK_RIGHT: WALK_SPEED}.get(pose, 0.0) * n
    return actions, cx, feet, arm


def draw_figure(img: np.ndarray, fig: Figure, cx: float, feet: int, arm: float) -> None:
    """Draw one stick figure in place (no anti-aliasing: crisp colours for the tests)."""
    c = (int(fig.color[0]), int(fig.color[1]), int(fig.color[2]))
    x = int(round(cx))
    top = feet - fig.height + 1
    r = fig.head_r
    head_cy = top + r
    cv2.circle(img, (x, head_cy), r, c, -1, lineType=cv2.LINE_8)
    body_top = head_cy + r
    hw = fig.body_w // 2
    cv2.rectangle(img, (x - hw, body_top), (x + hw, feet), c, -1, lineType=cv2.LINE_8)
    shoulder = (x + hw, body_top + 1)
    hand = (
        int(round(shoulder[0] + fig.arm_len * math.sin(arm))),
        int(round(shoulder[1] + fig.arm_len * math.cos(arm))),
    )
    cv2.line(img, shoulder, hand, c, fig.limb, lineType=cv2.LINE_8)


def figure_box(fig: Figure, cx: float, feet: int, arm: float) -> Tuple[int, int, int, int]:
    """Tight pixel box (exclusive x2, y2) of exactly what :func:`draw_figure` draws."""
    m = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    draw_figure(m, replace(fig, color=(255, 255, 255)), cx, feet, arm)
    ys, xs = np.nonzero(m[..., 0])
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def normalised_box(box: Sequence[int]) -> np.ndarray:
    """A pixel box of a rendered frame as a fraction of the frame."""
    x1, y1, x2, y2 = box
    return np.array([x1 / WIDTH, y1 / HEIGHT, x2 / WIDTH, y2 / HEIGHT])


def detector_boxes(rng: np.random.Generator, boxes: Sequence[Sequence[float]], false_positive_rate: float):
    """Person-detector-like rows ``(k, 5)`` normalised x1 y1 x2 y2 score: each of ``boxes`` (normalised) with noise
    and a score in [0.8, 1), plus, with probability ``false_positive_rate``, a low-score box on the background."""
    rows = [[*np.clip(np.asarray(b) + rng.normal(0, 0.01, 4), 0, 1), rng.uniform(0.8, 1.0)] for b in boxes]
    if rng.random() < false_positive_rate:
        w, h = rng.uniform(0.1, 0.3), rng.uniform(0.2, 0.4)
        x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        rows.append([x, y, x + w, y + h, rng.uniform(0.05, 0.6)])
    return np.array(rows, np.float64).reshape(-1, 5)


def draw_background(rng: np.random.Generator, style: str = "texture") -> np.ndarray:
    """``"texture"``: low-saturation blurred noise; ``"plain"``: one colour plus a gradient, so an MAE's pixel
    loss is about the figures."""
    if style == "plain":
        tint = rng.uniform(70, 170, (1, 1, 3)).astype(np.float32)
        gx, gy = rng.uniform(-25, 25), rng.uniform(-25, 25)
        xs = np.linspace(-1, 1, WIDTH, dtype=np.float32)[None, :, None]
        ys = np.linspace(-1, 1, HEIGHT, dtype=np.float32)[:, None, None]
        return np.clip(tint + gx * xs + gy * ys, 40, 200).astype(np.uint8)
    noise = rng.normal(0, 18, (HEIGHT, WIDTH, 1)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 1.5)[..., None]
    grad = np.linspace(-10, 10, WIDTH, dtype=np.float32)[None, :, None]
    tint = rng.uniform(-6, 6, (1, 1, 3)).astype(np.float32)
    bg = 120 + noise + grad + tint
    return np.clip(bg, 60, 180).astype(np.uint8)


def render_video(seed: int, num_frames: int, num_people: int, figures: str = "small", background: str = "texture"):
    """Render one synthetic video.

    Returns ``(frames, people)``: ``frames`` uint8 [T, H, W, 3] RGB and, per person, ``actions`` (per second)
    and ``boxes`` (per-frame tight pixel boxes, exclusive x2/y2).
    """
    rng = np.random.default_rng(seed)
    bg = draw_background(rng, background)
    lane_h = HEIGHT // num_people
    colors = rng.permutation(len(PALETTE))[:num_people]
    figs, plans = [], []
    for p in range(num_people):
        if figures == "large":
            max_h = lane_h - JUMP_HEIGHT - 2
            height = int(rng.integers(max(20, lane_h // 2), max_h + 1))
            style = dict(body_frac=0.4, limb=max(2, round(height * 0.08)))
        else:
            max_h = min(40, lane_h - JUMP_HEIGHT - 2)
            height = int(rng.integers(20, max_h + 1))
            style = {}
        fig = Figure(
            color=PALETTE[colors[p]],
            height=height,
            lane_top=p * lane_h + 1,
            lane_bottom=(p + 1) * lane_h - 2,
            **style,
        )
        figs.append(fig)
        plans.append(_plan_person(rng, fig, num_frames))
    frames = np.empty((num_frames, HEIGHT, WIDTH, 3), np.uint8)
    people = [{"actions": plan[0], "boxes": np.zeros((num_frames, 4), np.int64)} for plan in plans]
    for f in range(num_frames):
        img = bg.copy()
        for fig, (_, cx, feet, arm), person in zip(figs, plans, people):
            draw_figure(img, fig, cx[f], int(feet[f]), arm[f])
            person["boxes"][f] = figure_box(fig, cx[f], int(feet[f]), arm[f])
        frames[f] = img
    return frames, people


def _keyframe_secs(num_frames: int) -> List[int]:
    """Seconds from 902 whose keyframe has a full default clip (+-8 frames) inside the video."""
    secs = []
    s = FIRST_KEYFRAME_SEC
    while (s - START_SEC) * FPS + CLIP_HALF_SPAN < num_frames:
        secs.append(s)
        s += 1
    return secs


def _write_readme(path: Path, args: dict) -> None:
    path.write_text(
        "tiny_ava: synthetic AVA-layout dataset generated by datasets/make_tiny_ava.py\n"
        f"parameters: {json.dumps(args, sort_keys=True)}\n\n"
        f"Videos: {WIDTH}x{HEIGHT}, {FPS} fps; frame 0 is second {START_SEC} (like AVA's 15-minute crops);\n"
        f"keyframes every second from {FIRST_KEYFRAME_SEC}; keyframe second s <-> 0-based frame (s-900)*30,\n"
        "i.e. frames/<id>/<id>_<(s-900)*30+1 as %06d>.jpg.\n\n"
        "Each video has 2-3 identical-looking stick figures (colour is random per person, not per action).\n"
        "Classes (label_id: name), recognisable only from motion over a clip of 8 frames at stride 2:\n"
        f"  1: walk left   moves -x at {WALK_SPEED} px/frame\n"
        f"  2: walk right  moves +x at {WALK_SPEED} px/frame\n"
        "  3: stand       no horizontal motion\n"
        f"  4: jump        whole figure bounces up to {JUMP_HEIGHT} px (period {JUMP_PERIOD} frames); optional extra\n"
        f"  5: wave        the arm swings (period {WAVE_PERIOD} frames); optional extra\n"
        "Exactly one of 1/2/3 per person and keyframe, plus any of 4/5 (multi-label: one CSV row per\n"
        "(person, action)). Action sets change only at half-second boundaries, so the +-8 frames around\n"
        "a keyframe see one action set. GT boxes are the tight extent of the drawn figure at the keyframe.\n"
        "Predicted boxes: GT boxes with small noise, scores in [0.8, 1.0], plus low-score false positives.\n"
    )
    if args.get("figures") == "large":
        with open(path, "a") as f:
            f.write(
                "\nLarge figures (--figures large): 1-2 figures per video instead of 2-3, filling their lane\n"
                "(half or all of the frame height), body 0.4x the height wide, arm thickness 0.08x the height.\n"
            )
    if args.get("background") == "plain":
        with open(path, "a") as f:
            f.write(
                "\nPlain background (--background plain): one random colour per video plus a gentle linear\n"
                "gradient instead of the grey noise texture.\n"
            )


def _is_complete(root: Path, params: dict) -> bool:
    marker = root / _MARKER
    if not marker.is_file():
        return False
    try:
        done = json.loads(marker.read_text())
    except json.JSONDecodeError:
        return False
    need = FORMAT_PARTS[params["format"]]
    have = FORMAT_PARTS.get(done.get("format", ""), set())
    same = {k: v for k, v in done.items() if k != "format"} == {k: v for k, v in params.items() if k != "format"}
    return same and need <= have


def make_tiny_ava(
    root: str | Path = "datasets/tiny_ava",
    seed: int = 0,
    num_train_videos: int = 8,
    num_val_videos: int = 3,
    seconds: int = 10,
    format: str = "both",
    force: bool = False,
    videos_only: bool = False,
    figures: str = "small",
    background: str = "texture",
) -> Path:
    """Generate the tiny AVA dataset under ``root`` and return it.

    Deterministic from ``seed``, each video with its own seed. Returns at once when ``root`` holds a complete
    dataset made with the same parameters.

    Args:
        force: rebuild even if complete.
        videos_only: the training videos only (an unlabelled set for MAE pretraining).
        figures: ``"small"`` (2-3 figures) or ``"large"`` (1-2 figures filling their lane).
        background: ``"texture"`` or ``"plain"`` (see :func:`draw_background`).
    """
    if format not in FORMAT_PARTS:
        raise ValueError(f"format must be one of {sorted(FORMAT_PARTS)}, got {format!r}")
    if figures not in FIGURES:
        raise ValueError(f"figures must be one of {list(FIGURES)}, got {figures!r}")
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {list(BACKGROUNDS)}, got {background!r}")
    if videos_only:
        if num_val_videos:
            raise ValueError(f"videos_only writes training videos only; num_val_videos must be 0, got {num_val_videos}")
        format = "videos"
    if seconds < 3:
        raise ValueError(f"seconds must be >= 3 (keyframes start at second {FIRST_KEYFRAME_SEC}), got {seconds}")
    root = Path(root)
    params = dict(
        seed=seed,
        num_train_videos=num_train_videos,
        num_val_videos=num_val_videos,
        seconds=seconds,
        format=format,
        version=1,
    )
    if videos_only:  # only then: the default dataset's marker and README stay byte-identical
        params["videos_only"] = True
    if figures != "small":
        params["figures"] = figures
    if background != "texture":
        params["background"] = background
    if not force and _is_complete(root, params):
        return root
    for sub in ("videos", "frames", "annotations", "frame_lists"):
        shutil.rmtree(root / sub, ignore_errors=True)
    (root / _MARKER).unlink(missing_ok=True)
    ann_dir, list_dir = root / "annotations", root / "frame_lists"
    root.mkdir(parents=True, exist_ok=True)
    # Generated data never belongs in git.
    (root / ".gitignore").write_text("*\n")
    if videos_only:
        _write_unlabelled_videos(root, seed, num_train_videos, seconds * FPS, figures, background)
        _write_readme(root / "README.txt", params)
        with open(root / "README.txt", "a") as f:
            f.write(
                "\nVideos only (--videos-only): no annotations are written; an unlabelled set for MAE pretraining.\n"
            )
        (root / _MARKER).write_text(json.dumps(params, sort_keys=True))
        return root
    for d in (ann_dir, list_dir):
        d.mkdir(parents=True, exist_ok=True)
    parts = FORMAT_PARTS[format]
    num_frames = seconds * FPS
    split_rng = np.random.default_rng([seed, 7])
    for split, count, split_code in (("train", num_train_videos, 1), ("val", num_val_videos, 2)):
        gt_rows, prop_rows, list_rows, excluded = [], [], [], []
        video_idx = 0  # SlowFast numbers videos per frame list
        for i in range(count):
            vid = f"tiny{split}{i:03d}"
            frames, people, vrng = _render_split_video(seed, split_code, i, num_frames, figures, background)
            if "videos" in parts:
                (root / "videos").mkdir(exist_ok=True)
                write_mp4(root / "videos" / f"{vid}.mp4", frames)
            if "frames" in parts:
                fdir = root / "frames" / vid
                fdir.mkdir(parents=True, exist_ok=True)
                for f, img in enumerate(frames):
                    cv2.imwrite(str(fdir / frame_file_name(vid, f)), img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            for f in range(num_frames):
                list_rows.append(f'{vid} {video_idx} {f} {vid}/{frame_file_name(vid, f)} ""')
            video_idx += 1
            for sec in _keyframe_secs(num_frames):
                f = (sec - START_SEC) * FPS
                nboxes = [normalised_box(person["boxes"][f]) for person in people]
                for pid, (person, nbox) in enumerate(zip(people, nboxes)):
                    for act in sorted(person["actions"][segment_of(f)]):
                        gt_rows.append(format_ava_row(vid, sec, nbox, act, pid))
                for row in detector_boxes(vrng, nboxes, 0.3):
                    prop_rows.append(format_ava_row(vid, sec, row[:4], None, row[4]))
        # One excluded keyframe per split (AVA lists a few ambiguous keyframes per video set).
        if count:
            vid = f"tiny{split}{int(split_rng.integers(count)):03d}"
            sec = int(split_rng.choice(_keyframe_secs(num_frames)))
            excluded.append(format_ava_row(vid, sec))
        names = annotation_file_names(split)
        write_ava_csv(ann_dir / names["groundtruth"], gt_rows)
        write_ava_csv(ann_dir / names["proposals"], prop_rows)
        write_ava_csv(ann_dir / names["exclusions"], excluded)
        (list_dir / f"{split}.csv").write_text(
            "original_vido_id video_idx frame_id path labels\n" + "".join(r + "\n" for r in list_rows)
        )
    write_labelmap(ann_dir / annotation_file_names("train")["label_map"], CLASSES)
    _write_readme(root / "README.txt", params)
    (root / _MARKER).write_text(json.dumps(params, sort_keys=True))
    return root


def _render_split_video(
    seed: int, split_code: int, i: int, num_frames: int, figures: str = "small", background: str = "texture"
):
    """The ``i``-th video of a split: its own seeds, so adding videos keeps the others."""
    vrng = np.random.default_rng([seed, split_code, i, 1])
    frames, people = render_video(
        seed=int(np.random.default_rng([seed, split_code, i]).integers(2**31)),
        num_frames=num_frames,
        num_people=int(vrng.integers(*FIGURES[figures])),
        figures=figures,
        background=background,
    )
    return frames, people, vrng


def _write_unlabelled_videos(root: Path, seed: int, count: int, num_frames: int, figures: str, background: str) -> None:
    """The training videos exactly as the labelled set would render them, without any annotation."""
    (root / "videos").mkdir(exist_ok=True)
    for i in range(count):
        frames, _, _ = _render_split_video(seed, 1, i, num_frames, figures, background)
        write_mp4(root / "videos" / f"tinytrain{i:03d}.mp4", frames)


def write_mp4(path: Path, frames: np.ndarray, fps: float = FPS) -> None:
    """Frames (RGB) as an OpenCV mp4v file, written atomically (the tiny datasets' videos are mp4v, not H.264)."""

    def save(tmp: str) -> None:
        with VideoWriter(tmp, fps, WIDTH, HEIGHT, codec="mp4v") as writer:
            for img in frames:
                writer.write(img)

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_save(path, save, fsync=False)
