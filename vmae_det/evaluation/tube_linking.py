"""Link per-frame detections into action tubes: MOC-Detector's linking (MCG-NJU/MOC-Detector,
``src/ACT_utils/ACT_build.py`` ``BuildTubes``, ACT's greedy per-class linking with MOC's parameters) on one-frame
tubelets (K = 1), then the per-video tube NMS of its ``videoAP`` (``nms3dt(tubes, 0.3)``).

The output is the official video-detection layout that :mod:`vmae_det.evaluation.tubes` scores. Equal to the
official on the same inputs (ties included); the rules are in ``docs/tube_evaluation.md``. Over 400 lines: one
official procedure (its NMS, linking, tube NMS) vectorised across videos, and its command line.

    python -m vmae_det.evaluation.tube_linking GT.pkl FRAME_DETS.pkl -o VIDEO_DETS.pkl
"""

from __future__ import annotations

import argparse
import math
import pickle
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..cli import check_output_file, run_main
from ..formats.act import check_frame_detections, load_groundtruth, split_videos
from ..formats.atomic import atomic_write_bytes
from ..formats.safe_pickle import load_pickle

__all__ = ["LINKING_DEFAULTS", "check_linking_options", "link_tubes", "main"]

CHUNK_ROWS = 1 << 17  # videos are linked together in chunks of about this many rows
# MOC-Detector's BuildTubes and videoAP constants
LINKING_DEFAULTS = dict(nms_threshold=0.6, top_k=10, link_iou=0.5, min_score=0.005, min_length=15, tube_nms=0.3)


def check_linking_options(flags: bool = False, **options: Any) -> None:
    """Refuse linking options (:data:`LINKING_DEFAULTS`' names) that can only be a mistake: NaN or an IoU outside
    [0, 1] (NaN links or suppresses nothing), ``top_k < 1`` (no box), ``min_length < 0``; ``flags``: name them as
    the command line's ``--flag``s."""
    for name, value in options.items():
        what = f"--{name.replace('_', '-')}" if flags else name
        if name in ("top_k", "min_length"):
            low = 1 if name == "top_k" else 0
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{what} {value!r}: must be an integer >= {low}")
            continue
        if name == "tube_nms" and value is None:
            continue
        number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
        if not (number and math.isfinite(value)):
            raise ValueError(f"{what} {value!r}: must be a finite number")
        if name != "min_score" and not 0 <= value <= 1:
            raise ValueError(f"{what} {value!r}: an IoU threshold must be in [0, 1]")


# ------------------------------------------------------------------------------------ per-frame soft NMS
def _iou_plus1(x1, y1, x2, y2, area, i, j):
    """IoU of boxes ``i`` and ``j`` with ACT's +1 pixel convention, in the official's operation order."""
    w = np.maximum(0, np.minimum(x2[i], x2[j]) - np.maximum(x1[i], x1[j]) + 1)
    h = np.maximum(0, np.minimum(y2[i], y2[j]) - np.maximum(y1[i], y1[j]) + 1)
    inter = w * h
    return inter / (area[j] + area[i] - inter)


def _descending(scores: np.ndarray, group: np.ndarray, starts: np.ndarray, negate: bool = False) -> np.ndarray:
    """Row order of ``np.argsort(scores)[::-1]`` (``negate``: ``np.argsort(-scores)``) inside each group (rows
    grouped, group ``g`` at ``starts[g]:starts[g + 1]``). Groups with equal scores are sorted one by one with the
    official's call, whose order of ties no other sort knows."""
    order = np.lexsort((-scores, group))
    s, g = scores[order], group[order]
    for t in np.unique(g[1:][(s[1:] == s[:-1]) & (g[1:] == g[:-1])]).tolist():
        a, b = starts[t], starts[t + 1]
        order[a:b] = a + (np.argsort(-scores[a:b]) if negate else np.argsort(scores[a:b])[::-1])
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
class _Finished:
    """Tubes in the order the official finishes them, with their rows (into the linked ``dets``)."""

    def __init__(self):
        self.vl, self.tid, self.score, self.length = [], [], [], []
        self.member_tid, self.member_row = [], []
        self.next_tid = 0


def _link(vl, frame, dets, last_frame, link_iou, out: _Finished) -> None:
    """MOC's ``BuildTubes`` (K = 1) of every (video, class) sequence at once, frame by frame.

    Rows are sorted by (frame, sequence ``vl``), each frame's boxes of a sequence in their NMS order; ``dets`` holds
    x1 y1 x2 y2 score; ``last_frame[vl]``: the video's frame count. With K = 1 a tube missing a frame ends.
    """
    dtype = dets.dtype
    nf = int(frame[-1])
    fstart = np.searchsorted(frame, np.arange(1, nf + 3))
    empty = np.zeros(0, np.int64)
    a_vl, a_tid, a_len, a_slot = empty, empty, empty, empty
    a_box, a_score = np.zeros((0, 4), dtype), np.zeros(0, dtype)
    hist = np.zeros((64, nf + 1), dtype)  # the score history of each alive tube (a row per slot)
    free_slots = list(range(64))[::-1]
    next_tid = out.next_tid

    def finish(idx):
        out.vl.append(a_vl[idx])
        out.tid.append(a_tid[idx])
        out.score.append(a_score[idx])
        out.length.append(a_len[idx])
        free_slots.extend(a_slot[idx].tolist())

    for f in range(1, nf + 2):
        r0, r1 = fstart[f - 1], fstart[f]
        rv = vl[r0:r1]
        if len(a_vl):
            ended = last_frame[a_vl] < f  # the video ended at f - 1: its tubes are added as they stand
            if ended.any():
                finish(np.nonzero(ended)[0])
                a_vl, a_tid, a_len, a_slot, a_box, a_score = (
                    x[~ended] for x in (a_vl, a_tid, a_len, a_slot, a_box, a_score)
                )
        if len(a_vl):
            starts = np.searchsorted(a_vl, a_vl, "left")
            group = np.cumsum(np.append(0, a_vl[1:] != a_vl[:-1]))
            order = _descending(a_score, group, np.append(np.unique(starts), len(a_vl)), negate=True)
            a_vl, a_tid, a_len, a_slot, a_box, a_score = (
                x[order] for x in (a_vl, a_tid, a_len, a_slot, a_box, a_score)
            )
            lo = np.searchsorted(rv, a_vl, "left")
            cnt = np.searchsorted(rv, a_vl, "right") - lo
            if not cnt.all():  # no box of its class at f: every tube of the sequence ends, last first
                e = np.nonzero(cnt == 0)[0]
                finish(e[np.lexsort((-e, a_vl[e]))])
                keep = cnt > 0
                a_vl, a_tid, a_len, a_slot, a_box, a_score = (
                    x[keep] for x in (a_vl, a_tid, a_len, a_slot, a_box, a_score)
                )
                lo, cnt = lo[keep], cnt[keep]
        if r1 == r0:
            continue
        box = dets[r0:r1]
        free = np.ones(r1 - r0, dtype=bool)
        n_alive = len(a_vl)
        if n_alive:
            pt = np.repeat(np.arange(n_alive), cnt)  # (tube, box of its sequence) pairs
            pd = lo[pt] + np.arange(len(pt)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            b1, b2 = box[pd], a_box[pt]  # the official's iou2d(boxes, last box of the tube)
            w = np.maximum(0, np.minimum(b1[:, 2] + 1, b2[:, 2] + 1) - np.maximum(b1[:, 0], b2[:, 0]))
            h = np.maximum(0, np.minimum(b1[:, 3] + 1, b2[:, 3] + 1) - np.maximum(b1[:, 1], b2[:, 1]))
            ov = w * h
            a1 = (b1[:, 2] - b1[:, 0] + 1) * (b1[:, 3] - b1[:, 1] + 1)
            a2 = (b2[:, 2] - b2[:, 0] + 1) * (b2[:, 3] - b2[:, 1] + 1)
            ok = ov / (a1 + a2 - ov) >= link_iou
            rank = np.arange(n_alive) - np.searchsorted(a_vl, a_vl, "left")
            prank = rank[pt]
            match = np.full(n_alive, -1)
            for r in range(int(rank.max()) + 1):  # tubes in score order take the best free box, one per sequence
                sel = np.nonzero(ok & (prank == r) & free[pd])[0]
                if not len(sel):
                    continue
                tt, dd = pt[sel], pd[sel]
                o = np.lexsort((-box[dd, 4], tt))
                o = o[np.append(True, tt[o][1:] != tt[o][:-1])]
                match[tt[o]] = dd[o]
                free[dd[o]] = False
            hit = match >= 0
            miss = np.nonzero(~hit)[0]
            if len(miss):
                finish(miss[np.lexsort((-miss, a_vl[miss]))])
            k, d = np.nonzero(hit)[0], match[hit]
            a_box[k] = box[d, :4]
            hist[a_slot[k], a_len[k]] = box[d, 4]
            a_len[k] += 1
            for length in np.unique(a_len[k]).tolist():  # the official's np.mean of the tube's scores
                sel = k[a_len[k] == length]
                a_score[sel] = np.add.reduce(hist[a_slot[sel], :length], axis=1) / length
            out.member_tid.append(a_tid[k])
            out.member_row.append(r0 + d)
            a_vl, a_tid, a_len, a_slot, a_box, a_score = (x[hit] for x in (a_vl, a_tid, a_len, a_slot, a_box, a_score))
        nd = np.nonzero(free)[0]  # the free boxes start tubes
        if len(nd):
            if len(free_slots) < len(nd):
                grow = max(len(hist), len(nd))
                free_slots.extend(range(len(hist) + grow - 1, len(hist) - 1, -1))
                hist = np.concatenate([hist, np.zeros((grow, nf + 1), dtype)])
            slots = np.array(free_slots[-len(nd) :][::-1], dtype=np.int64)
            del free_slots[-len(nd) :]
            tids = np.arange(next_tid, next_tid + len(nd))
            next_tid += len(nd)
            hist[slots, 0] = box[nd, 4]
            out.member_tid.append(tids)
            out.member_row.append(r0 + nd)
            cat = lambda x, y: np.concatenate([x, y])
            a_vl, a_tid, a_slot = cat(a_vl, rv[nd]), cat(a_tid, tids), cat(a_slot, slots)
            a_len, a_box, a_score = (
                cat(a_len, np.ones(len(nd), np.int64)),
                cat(a_box, box[nd, :4]),
                cat(a_score, box[nd, 4]),
            )
            order = np.argsort(a_vl, kind="stable")  # per sequence: the tubes kept, then the new ones
            a_vl, a_tid, a_len, a_slot, a_box, a_score = (
                x[order] for x in (a_vl, a_tid, a_len, a_slot, a_box, a_score)
            )
    out.next_tid = next_tid


def _tube_ious(rows, first, length, j, i):
    """ACT / MOC ``iou3dt(tube j, tube i)`` (+1 conventions, float32 as theirs) for pairs ``(j, i)`` of tubes of
    consecutive frames stored at ``rows[first:first + length]``, and where they share no frame (IoU 0)."""
    f1, l1 = rows[first[j], 0], rows[first[j] + length[j] - 1, 0]
    f2, l2 = rows[first[i], 0], rows[first[i] + length[i] - 1, 0]
    tmin, tmax = np.maximum(f1, f2), np.minimum(l1, l2)
    out = np.zeros(len(j), dtype=rows.dtype)
    disjoint = tmax < tmin
    ok = np.nonzero(~disjoint)[0]
    n = (tmax - tmin + 1)[ok].astype(np.int64)
    ratio = (tmax - tmin + 1)[ok] / (np.maximum(l1, l2) - np.minimum(f1, f2) + 1)[ok]
    s1 = first[j[ok]] + (tmin[ok] - f1[ok]).astype(np.int64)
    s2 = first[i[ok]] + (tmin[ok] - f2[ok]).astype(np.int64)
    for length_ in np.unique(n).tolist():  # one (pairs, frames) array per overlap length: its row sums are np.mean's
        p = np.nonzero(n == length_)[0]
        r = np.arange(length_)
        t1, t2 = rows[s1[p][:, None] + r, 1:5], rows[s2[p][:, None] + r, 1:5]
        w = np.maximum(0, np.minimum(t1[..., 2] + 1, t2[..., 2] + 1) - np.maximum(t1[..., 0], t2[..., 0]))
        h = np.maximum(0, np.minimum(t1[..., 3] + 1, t2[..., 3] + 1) - np.maximum(t1[..., 1], t2[..., 1]))
        ov = w * h
        a1 = (t1[..., 2] - t1[..., 0] + 1) * (t1[..., 3] - t1[..., 1] + 1)
        a2 = (t2[..., 2] - t2[..., 0] + 1) * (t2[..., 3] - t2[..., 1] + 1)
        out[ok[p]] = np.add.reduce(ov / (a1 + a2 - ov), axis=1) / length_ * ratio[p]
    return out, disjoint


def _nms3dt(rows, first, length, scores, group, overlap: float) -> np.ndarray:
    """MOC's ``nms3dt`` of every group of tubes at once; the kept tubes, each group's in the official's order."""
    starts = np.searchsorted(group, np.arange(int(group[-1]) + 2))
    order = np.lexsort((scores, group))  # the official's np.argsort(scores), the keeper last
    s, g = scores[order], group[order]
    for t in np.unique(g[1:][(s[1:] == s[:-1]) & (g[1:] == g[:-1])]).tolist():
        order[starts[t] : starts[t + 1]] = starts[t] + np.argsort(scores[starts[t] : starts[t + 1]])
    alive = np.ones(len(order), dtype=bool)  # by position in ``order``
    kept = []
    while np.any(alive):
        pos = np.nonzero(alive)[0]
        g = group[order[pos]]
        last = np.append(g[1:] != g[:-1], True)
        keeper = pos[last]
        kept.append(order[keeper])
        alive[keeper] = False
        rest = pos[~last]
        if not len(rest):
            break
        kg = group[order[keeper]]
        rg = group[order[rest]]
        ious, disjoint = _tube_ious(rows, first, length, order[rest], order[keeper[np.searchsorted(kg, rg)]])
        # a pair without a shared frame gives the official a Python 0.0: that step's list becomes float64
        any_disjoint = np.zeros(len(kg), dtype=bool)
        any_disjoint[np.searchsorted(kg, rg[disjoint])] = True
        wide = any_disjoint[np.searchsorted(kg, rg)]
        stay = np.where(wide, ious.astype(np.float64) <= overlap, ious <= overlap)
        alive[rest[~stay]] = False
    kept = np.concatenate(kept)
    return kept[np.lexsort((np.arange(len(kept)), group[kept]))]


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
        num_labels: labels ``0..num_labels-1`` get a key, a label beyond is an error (default: up to the largest
            label present).
        nms_threshold, top_k: per frame and class, MOC's soft NMS and the boxes kept.
        link_iou: a tube takes the best-scored free box of IoU ``>=`` this with its last box; else it ends.
        min_score, min_length: tubes under either are dropped.
        tube_nms: per video and class, the tube NMS of MOC's ``videoAP`` (``None``: none).
        progress: show a progress bar over the videos.
    Returns:
        ``{label_index: [(video, tube_score, (n, 6) float32 frame x1 y1 x2 y2 box_score)]}``.
    """
    check_linking_options(
        nms_threshold=nms_threshold,
        top_k=top_k,
        link_iou=link_iou,
        min_score=min_score,
        min_length=min_length,
        tube_nms=tube_nms,
    )
    check_frame_detections(frame_dets, videos, "frame detections", nframes, num_labels)
    options = dict(min_score=min_score, min_length=min_length, tube_nms=tube_nms)
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
    ukey, starts = np.unique(key, return_index=True)
    group = np.repeat(np.arange(len(ukey)), np.diff(np.append(starts, len(key))))
    dets, group = _soft_nms(
        frame_dets[order][:, [4, 5, 6, 7, 3]], group, np.append(starts, len(key)), nms_threshold, top_k
    )
    vl, frame = ukey[group] // fmax, ukey[group] % fmax  # rows grouped by sequence (video, class), then frame
    last_frame = np.array([int(nframes[v]) for v in videos], dtype=np.int64).repeat(nl)
    video_end = np.searchsorted(vl, (np.arange(len(videos)) + 1) * nl)
    bounds = [0]
    for iv in range(len(videos)):
        if video_end[iv] - bounds[-1] >= CHUNK_ROWS or iv == len(videos) - 1:
            bounds.append(int(video_end[iv]))
    with _progress(len(videos), progress) as bar:
        for r0, r1 in zip(bounds[:-1], bounds[1:]):
            if r1 > r0:
                _link_chunk(dets[r0:r1], vl[r0:r1], frame[r0:r1], last_frame, link_iou, videos, nl, out, options)
            done = len(videos) if r1 == len(vl) else int(np.searchsorted(video_end, r1, "right"))
            bar.update(done - bar.n)
    return out


def _link_chunk(dets, vl, frame, last_frame, link_iou, videos, nl, out, options) -> None:
    """Link one chunk of sequences, build its tubes, filter them and add them to ``out`` in the official order."""
    order = np.argsort(frame, kind="stable")  # by frame, then sequence
    dets, vl, frame = dets[order], vl[order], frame[order]
    fin = _Finished()
    _link(vl, frame, dets, last_frame, link_iou, fin)
    f_vl, f_tid, f_score, f_len = (np.concatenate(x) for x in (fin.vl, fin.tid, fin.score, fin.length))
    order = np.argsort(f_vl, kind="stable")  # each sequence's tubes in the order the official finishes them
    f_vl, f_tid, f_score, f_len = f_vl[order], f_tid[order], f_score[order], f_len[order]
    keep = ~((f_score < options["min_score"]) | (f_len < options["min_length"]))
    f_vl, f_tid, f_score, f_len = f_vl[keep], f_tid[keep], f_score[keep], f_len[keep]
    m_tid, m_row = np.concatenate(fin.member_tid), np.concatenate(fin.member_row)
    rows = m_row[np.argsort(m_tid, kind="stable")]  # each tube's rows, in time order
    first = np.concatenate([[0], np.cumsum(np.bincount(m_tid, minlength=fin.next_tid))])[f_tid]
    idx = np.repeat(first - np.cumsum(f_len) + f_len, f_len) + np.arange(int(f_len.sum()))
    tubes = np.zeros((len(idx), 6), dtype=np.float32)
    tubes[:, 0] = frame[rows[idx]]
    tubes[:, 1:] += dets[rows[idx]]
    if not len(f_len):
        return
    first = np.cumsum(f_len) - f_len
    if options["tube_nms"] is not None:
        kept = _nms3dt(
            tubes, first, f_len, f_score, np.cumsum(np.append(0, f_vl[1:] != f_vl[:-1])), options["tube_nms"]
        )
    else:
        kept = np.arange(len(f_len))
    for k in kept.tolist():
        iv, il = divmod(int(f_vl[k]), nl)
        out[il].append((videos[iv], f_score[k], tubes[first[k] : first[k] + f_len[k]]))


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    # disable=None: shown on a terminal only
    return tqdm(total=total, desc="linking", unit="video", disable=None if enabled else True, leave=False)


# ------------------------------------------------------------------------------------------------------- CLI
def _main(argv: Optional[Sequence[str]]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vmae_det.evaluation.tube_linking", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("groundtruth", help="ACT-format ground-truth pickle (videos, frame counts, labels)")
    parser.add_argument("detections", help="frame detections, a pickled (N, 8) array")
    parser.add_argument("-o", "--output", required=True, help="video detections to write (pickle)")
    parser.add_argument("--split", type=int, default=0, help="index into test_videos (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (shown on a terminal otherwise)")
    for name, value in LINKING_DEFAULTS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value, help=f"default {value}")
    args = parser.parse_args(argv)
    options = {name: getattr(args, name) for name in LINKING_DEFAULTS}
    check_linking_options(flags=True, **options)
    check_output_file(args.output)
    gt = load_groundtruth(args.groundtruth)
    videos = split_videos(gt, args.groundtruth, "test", args.split)
    dets = load_pickle(args.detections)
    check_frame_detections(dets, videos, args.detections, gt["nframes"], len(gt["labels"]))
    res = link_tubes(dets, videos, gt["nframes"], num_labels=len(gt["labels"]), progress=not args.quiet, **options)
    atomic_write_bytes(args.output, pickle.dumps(res, protocol=4))
    print(f"{sum(map(len, res.values()))} tubes of {len(res)} classes written to {args.output}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console entry point: bad input -> one ``error:`` line and exit code 2."""
    return run_main(lambda: _main(argv), interrupted="nothing written")


if __name__ == "__main__":
    raise SystemExit(main())
