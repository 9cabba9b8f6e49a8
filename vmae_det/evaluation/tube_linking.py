"""Link per-frame detections into action tubes: MOC-Detector's linking (MCG-NJU/MOC-Detector,
``src/ACT_utils/ACT_build.py`` ``BuildTubes``, ACT's greedy per-class linking with MOC's parameters) on one-frame
tubelets (K = 1), then the per-video tube NMS of its ``videoAP`` (``nms3dt(tubes, 0.3)``).

The output is the official video-detection layout that :mod:`vmae_det.evaluation.tubes` scores. Equal to the
official on the same inputs (ties included); the rules are in ``docs/tube_evaluation.md``.

    python -m vmae_det.evaluation.tube_linking GT.pkl FRAME_DETS.pkl -o VIDEO_DETS.pkl
"""

from __future__ import annotations

import argparse
import logging
import pickle
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..cli import check_output_file, run_main
from ..formats.act import TubeFormatError, load_groundtruth
from ..formats.atomic import atomic_write_bytes
from ..formats.safe_pickle import load_pickle

__all__ = ["LINKING_DEFAULTS", "link_tubes", "check_frame_detections", "main"]

logger = logging.getLogger(__name__)

# MOC-Detector's BuildTubes and videoAP constants
LINKING_DEFAULTS = dict(nms_threshold=0.6, top_k=10, link_iou=0.5, min_score=0.005, min_length=15, tube_nms=0.3)


def check_frame_detections(frame_dets: Any, videos: Sequence[str], nframes: Mapping[str, int], where: str) -> None:
    """Raise :class:`TubeFormatError` naming ``where`` and the row unless ``frame_dets`` is an ``(N, 8)`` array of
    integer video indices into ``videos``, frames ``1..nframes[video]`` and label indices ``>= 0``."""
    if not isinstance(frame_dets, np.ndarray) or frame_dets.ndim != 2 or frame_dets.shape[1] != 8:
        shape = getattr(frame_dets, "shape", type(frame_dets).__name__)
        raise TubeFormatError(
            f"{where}: frame detections must be an (N, 8) array of [video_index, frame, label_index, score, "
            f"x1, y1, x2, y2], got {shape}"
        )
    if frame_dets.dtype not in (np.float32, np.float64):
        raise TubeFormatError(f"{where}: frame detections must be float32 or float64, got {frame_dets.dtype}")
    bad = ~np.all(np.isfinite(frame_dets), axis=1)
    if np.any(bad):
        raise TubeFormatError(f"{where}: row {int(np.argmax(bad))}: a non-finite value")
    vid, frame, label = frame_dets[:, 0], frame_dets[:, 1], frame_dets[:, 2]
    bad = (vid < 0) | (vid >= len(videos)) | (vid != np.round(vid))
    if np.any(bad):
        row = int(np.argmax(bad))
        raise TubeFormatError(
            f"{where}: row {row}: video index {vid[row]:g} is not an integer 0..{len(videos) - 1} (the test videos)"
        )
    counts = np.array([int(nframes[v]) for v in videos], dtype=np.int64)
    bad = (frame < 1) | (frame > counts[vid.astype(np.int64)]) | (frame != np.round(frame))
    if np.any(bad):
        row = int(np.argmax(bad))
        v = videos[int(vid[row])]
        raise TubeFormatError(f"{where}: row {row}: frame {frame[row]:g} is not an integer 1..{nframes[v]} of {v!r}")
    bad = (label < 0) | (label != np.round(label))
    if np.any(bad):
        row = int(np.argmax(bad))
        raise TubeFormatError(f"{where}: row {row}: label index {label[row]:g} is not an integer >= 0")


# ------------------------------------------------------------------------------------ per-frame soft NMS
def _iou_plus1(x1, y1, x2, y2, area, i, j):
    """IoU of boxes ``i`` and ``j`` with ACT's +1 pixel convention, in the official's operation order."""
    w = np.maximum(0, np.minimum(x2[i], x2[j]) - np.maximum(x1[i], x1[j]) + 1)
    h = np.maximum(0, np.minimum(y2[i], y2[j]) - np.maximum(y1[i], y1[j]) + 1)
    inter = w * h
    return inter / (area[j] + area[i] - inter)


def _descending(scores: np.ndarray, group: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Row order of ``np.argsort(scores)[::-1]`` inside each group (rows already grouped). Groups with equal scores
    are sorted one by one with the official's call, whose order of ties the others cannot know."""
    order = np.lexsort((-scores, group))
    s = scores[order]
    tied = np.unique(group[order][1:][(s[1:] == s[:-1]) & (group[order][1:] == group[order][:-1])])
    for g in tied:
        a, b = starts[g], starts[g + 1]
        order[a:b] = a + np.argsort(scores[a:b])[::-1]
    return order


def _soft_nms(dets: np.ndarray, group: np.ndarray, starts: np.ndarray, thr: float, top_k: int):
    """MOC's ``nms_tubelets`` (K = 1) of every group at once: greedy NMS whose suppressed boxes keep the score
    ``score * (1 - IoU)``; then the ``top_k`` best. Returns the kept rows (in each group's new order)."""
    x1, y1, x2, y2, scores = (dets[:, k] for k in range(5))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    weight = np.zeros_like(scores) + 1
    order = _descending(scores, group, starts)
    alive = np.ones(len(order), dtype=bool)  # by position in ``order``
    # each round, every group's first alive box suppresses the alive ones after it
    while np.any(alive):
        pos = np.nonzero(alive)[0]
        g = group[order[pos]]
        first = np.ones(len(pos), dtype=bool)
        first[1:] = g[1:] != g[:-1]
        keeper_pos = pos[first]
        alive[keeper_pos] = False
        rest = pos[~first]
        if not len(rest):
            break
        keeper_of = keeper_pos[np.searchsorted(group[order[keeper_pos]], group[order[rest]])]
        i, j = order[keeper_of], order[rest]
        ious = 0 + _iou_plus1(x1, y1, x2, y2, area, i, j)
        hit = ious > thr
        weight[j[hit]] = 1 - ious[hit]
        alive[rest[hit]] = False
    new = dets[:, 4] * weight
    order = _descending(new, group, starts)
    rank = np.arange(len(order)) - starts[group[order]]
    keep = order[rank < top_k]
    out = dets[keep].copy()
    out[:, 4] = new[keep]
    return out, group[keep]


# ------------------------------------------------------------------------------------------- linking
class _Tube:
    __slots__ = ("begin", "boxes", "scores", "score")

    def __init__(self, frame: int, box: np.ndarray):
        self.begin, self.boxes, self.scores = frame, [box], [box[4]]
        self.score = np.mean(np.array(self.scores))

    def append(self, box: np.ndarray) -> None:
        self.boxes.append(box)
        self.scores.append(box[4])
        self.score = np.mean(np.array(self.scores))  # the official's tubescore, recomputed as it does

    @property
    def end(self) -> int:
        return self.begin + len(self.boxes) - 1


def _by_score(tubes: List[_Tube]) -> List[_Tube]:
    return [tubes[i] for i in np.argsort(-np.array([t.score for t in tubes]))]


def _link_one(frames: np.ndarray, dets: np.ndarray, starts: np.ndarray, nframes: int, link_iou: float):
    """``BuildTubes`` of one video and class: ``frames[k]`` holds rows ``starts[k]:starts[k+1]`` of ``dets``."""
    finished: List[_Tube] = []
    current: List[_Tube] = []
    last = 0
    for k, f in enumerate(frames.tolist()):
        if current and f != last + 1:  # the frame after ``last`` had no box: every tube ends there
            finished.extend(_by_score(current)[::-1])
            current = []
        box = dets[starts[k] : starts[k + 1]]
        free = np.ones(len(box), dtype=bool)
        if f > 1 and current:
            current = _by_score(current)
            last_boxes = np.stack([t.boxes[-1] for t in current])
            b1, b2 = box[None, :, :4], last_boxes[:, None, :4]
            w = np.maximum(0, np.minimum(b1[..., 2] + 1, b2[..., 2] + 1) - np.maximum(b1[..., 0], b2[..., 0]))
            h = np.maximum(0, np.minimum(b1[..., 3] + 1, b2[..., 3] + 1) - np.maximum(b1[..., 1], b2[..., 1]))
            ov = w * h
            a1 = (b1[..., 2] - b1[..., 0] + 1) * (b1[..., 3] - b1[..., 1] + 1)
            a2 = (b2[..., 2] - b2[..., 0] + 1) * (b2[..., 3] - b2[..., 1] + 1)
            ious = ov / (a1 + a2 - ov)
            ended = []
            for it, t in enumerate(current):
                valid = np.nonzero(free & (ious[it] >= link_iou))[0]
                if len(valid):
                    idx = valid[np.argmax(box[valid, 4])]
                    t.append(box[idx])
                    free[idx] = False
                else:
                    ended.append(it)
            finished.extend(current[it] for it in ended[::-1])
            gone = set(ended)
            current = [t for it, t in enumerate(current) if it not in gone]
        current.extend(_Tube(f, box[i]) for i in np.nonzero(free)[0])
        last = f
    if current and last < nframes:
        finished.extend(_by_score(current)[::-1])
    else:
        finished.extend(current)
    return finished


def _iou3dt(b1: np.ndarray, b2: np.ndarray):
    """ACT / MOC ``iou3dt`` with their +1 conventions (``0.0`` when the tubes share no frame)."""
    tmin, tmax = max(b1[0, 0], b2[0, 0]), min(b1[-1, 0], b2[-1, 0])
    if tmax < tmin:
        return 0.0
    inter = tmax - tmin + 1
    union = max(b1[-1, 0], b2[-1, 0]) - min(b1[0, 0], b2[0, 0]) + 1
    t1 = b1[int(tmin - b1[0, 0]) : int(tmax - b1[0, 0]) + 1, 1:5]
    t2 = b2[int(tmin - b2[0, 0]) : int(tmax - b2[0, 0]) + 1, 1:5]
    w = np.maximum(0, np.minimum(t1[:, 2] + 1, t2[:, 2] + 1) - np.maximum(t1[:, 0], t2[:, 0]))
    h = np.maximum(0, np.minimum(t1[:, 3] + 1, t2[:, 3] + 1) - np.maximum(t1[:, 1], t2[:, 1]))
    ov = w * h
    area1 = (t1[:, 2] - t1[:, 0] + 1) * (t1[:, 3] - t1[:, 1] + 1)
    area2 = (t2[:, 2] - t2[:, 0] + 1) * (t2[:, 3] - t2[:, 1] + 1)
    return np.mean(ov / (area1 + area2 - ov)) * (inter / union)


def _nms3dt(tubes: List[Tuple[np.ndarray, Any]], overlap: float) -> List[int]:
    order = np.argsort([t[1] for t in tubes]) if tubes else np.zeros(0, np.int64)
    keep = []
    while order.size > 0:
        i = order[-1]
        keep.append(int(i))
        # a list mixing Python 0.0 and numpy scalars becomes float64, as in the official
        ious = np.array([_iou3dt(tubes[ii][0], tubes[i][0]) for ii in order[:-1]])
        order = order[np.nonzero(ious <= overlap)[0]]
    return keep


def link_tubes(
    frame_dets: np.ndarray,
    videos: Sequence[str],
    nframes: Mapping[str, int],
    *,
    num_labels: Optional[int] = None,
    nms_threshold: float = LINKING_DEFAULTS["nms_threshold"],
    top_k: int = LINKING_DEFAULTS["top_k"],
    link_iou: float = LINKING_DEFAULTS["link_iou"],
    min_score: float = LINKING_DEFAULTS["min_score"],
    min_length: int = LINKING_DEFAULTS["min_length"],
    tube_nms: Optional[float] = LINKING_DEFAULTS["tube_nms"],
    progress: bool = False,
) -> Dict[int, List[Tuple[str, Any, np.ndarray]]]:
    """Action tubes from frame detections, as MOC-Detector links them (K = 1).

    Args:
        frame_dets: ``(N, 8)`` rows ``video_index, frame, label_index, score, x1, y1, x2, y2`` (frames 1-based,
            pixels); float32 or float64 (the official's arithmetic follows the dtype).
        videos: the video names ``video_index`` points into (``test_videos[split]``).
        nframes: frames per video; a tube alive on a video's last frame is not ended by the frame after it.
        num_labels: labels ``0..num_labels-1`` get a key (default: up to the largest label present).
        nms_threshold, top_k: per frame and class, MOC's soft NMS and the boxes kept.
        link_iou: a tube takes the best-scored free box of IoU ``>=`` this with its last box; else it ends.
        min_score, min_length: tubes under either are dropped.
        tube_nms: per video and class, the tube NMS of MOC's ``videoAP`` (``None``: none).
        progress: show a progress bar over the videos.
    Returns:
        ``{label_index: [(video, tube_score, (n, 6) float32 frame x1 y1 x2 y2 box_score)]}``.
    """
    check_frame_detections(frame_dets, videos, nframes, "frame detections")
    nl = int(num_labels) if num_labels is not None else int(frame_dets[:, 2].max()) + 1 if len(frame_dets) else 0
    out: Dict[int, List[Tuple[str, Any, np.ndarray]]] = {il: [] for il in range(nl)}
    if not len(frame_dets):
        return out
    vid = frame_dets[:, 0].astype(np.int64)
    frame = frame_dets[:, 1].astype(np.int64)
    label = frame_dets[:, 2].astype(np.int64)
    nl = max(nl, int(label.max()) + 1)
    out.update({il: [] for il in range(nl) if il not in out})
    fmax = int(frame.max()) + 1
    key = (vid * nl + label) * fmax + frame
    order = np.argsort(key, kind="stable")  # rows of one video, class and frame, in their file order
    key = key[order]
    dets = frame_dets[order][:, [4, 5, 6, 7, 3]]
    ukey, starts = np.unique(key, return_index=True)
    group = np.repeat(np.arange(len(ukey)), np.diff(np.append(starts, len(key))))
    dets, group = _soft_nms(dets, group, np.append(starts, len(key)), nms_threshold, top_k)
    gstarts = np.searchsorted(group, np.arange(len(ukey) + 1))
    vl = ukey // fmax  # (video, label) of each group
    vl_starts = np.nonzero(np.append(True, vl[1:] != vl[:-1]))[0].tolist() + [len(ukey)]
    by_video: Dict[int, Dict[int, list]] = {}
    bar = _progress(len(videos), progress)
    done_videos = 0
    for a, b in zip(vl_starts[:-1], vl_starts[1:]):
        iv, il = divmod(int(vl[a]), nl)
        while done_videos < iv:
            done_videos += 1
            bar.update(1)
        frames = ukey[a:b] % fmax
        tubes = _link_one(frames, dets, gstarts[a : b + 1], int(nframes[videos[iv]]), link_iou)
        built = []
        for t in tubes:
            if t.score < min_score or len(t.boxes) < min_length:
                continue
            tube = np.zeros((len(t.boxes), 6), dtype=np.float32)
            tube[:, 0] = np.arange(t.begin, t.end + 1)
            tube[:, 1:] += np.stack(t.boxes)[:, [0, 1, 2, 3, 4]]
            built.append((tube, t.score))
        keep = _nms3dt(built, tube_nms) if tube_nms is not None else range(len(built))
        by_video.setdefault(iv, {})[il] = [(videos[iv], built[i][1], built[i][0]) for i in keep]
    bar.update(len(videos) - done_videos)
    bar.close()
    for iv in sorted(by_video):
        for il, lst in sorted(by_video[iv].items()):
            out[il].extend(lst)
    return out


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="linking", unit="video", disable=not enabled)


# ------------------------------------------------------------------------------------------------------- CLI
def _main(argv: Optional[Sequence[str]]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vmae_det.evaluation.tube_linking", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("groundtruth", help="ACT-format ground-truth pickle (videos, frame counts, labels)")
    parser.add_argument("detections", help="frame detections, a pickled (N, 8) array")
    parser.add_argument("-o", "--output", required=True, help="video detections to write (pickle)")
    parser.add_argument("--split", type=int, default=0, help="index into test_videos (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    for name, value in LINKING_DEFAULTS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value, help=f"default {value}")
    args = parser.parse_args(argv)
    check_output_file(args.output)
    gt = load_groundtruth(args.groundtruth)
    if not 0 <= args.split < len(gt["test_videos"]):
        raise TubeFormatError(f"{args.groundtruth}: --split {args.split}: test_videos has {len(gt['test_videos'])}")
    videos = list(gt["test_videos"][args.split])
    missing = [v for v in videos if v not in gt.get("nframes", {})]
    if missing:
        raise TubeFormatError(f"{args.groundtruth}: test video {missing[0]!r} has no entry in 'nframes'")
    dets = load_pickle(args.detections)
    check_frame_detections(dets, videos, gt["nframes"], args.detections)
    options = {name: getattr(args, name) for name in LINKING_DEFAULTS}
    res = link_tubes(dets, videos, gt["nframes"], num_labels=len(gt["labels"]), progress=not args.quiet, **options)
    atomic_write_bytes(args.output, pickle.dumps(res, protocol=4))
    print(f"{sum(map(len, res.values()))} tubes of {len(res)} classes written to {args.output}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console entry point: bad input -> one ``error:`` line and exit code 2."""
    return run_main(lambda: _main(argv), interrupted="nothing written")


if __name__ == "__main__":
    raise SystemExit(main())
