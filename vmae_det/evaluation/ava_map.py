"""AVA frame-mAP, vectorised, numerically identical to the official ActivityNet evaluator (one module: the
rules build on each other).

The official code (``Evaluation/get_ava_performance.py`` and its copy of the TF object-detection Pascal evaluator)
loops over keyframes and classes; this computes the same numbers with array operations. The rules it reproduces,
heap tie-breaking included, are listed in ``docs/evaluation.md``; ``tests/ava_eval_reference.py``, a line-by-line
port, is the tests' oracle.
"""

from __future__ import annotations

import decimal
import heapq
import logging
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Tuple

import numpy as np

from ..formats.ava import AVARows, as_str

__all__ = [
    "AVAResult",
    "evaluate",
    "make_image_key",
    "PROTOCOLS",
    "MAX_DETECTIONS_PER_KEYFRAME",
    "check_max_detections_per_keyframe",
    "describe_detections_per_keyframe",
]

logger = logging.getLogger(__name__)

PROTOCOLS = ("2019", "2020")
#: The official ActivityNet evaluator keeps the top 50 detection rows (``(box, class)`` pairs) per keyframe.
MAX_DETECTIONS_PER_KEYFRAME = 50


def check_max_detections_per_keyframe(value) -> Optional[int]:
    """A per-keyframe detection cap: a positive int, or ``None`` to keep every detection; else ``ValueError``
    (the official ``capacity=0`` is ``None`` here, so a typo cannot switch the cap off)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"max_detections_per_keyframe must be a positive int or None (keep all detections), got {value!r}"
        )
    if value < 1:
        raise ValueError(
            f"max_detections_per_keyframe must be >= 1, got {value}; use None to keep all detections per "
            f"keyframe (VMAD/SlowFast) or {MAX_DETECTIONS_PER_KEYFRAME} for the official ActivityNet protocol"
        )
    return int(value)


def describe_detections_per_keyframe(value: Optional[int]) -> str:
    """Human-readable name of a cap setting, e.g. ``"top 50 detections per keyframe (official ActivityNet)"``."""
    if value is None:
        return "all detections per keyframe (no cap, as VMAD/SlowFast)"
    if value == MAX_DETECTIONS_PER_KEYFRAME:
        return f"top {value} detections per keyframe (official ActivityNet)"
    return f"top {value} detections per keyframe (non-standard cap)"


@dataclass
class AVAResult:
    """Outcome of :func:`evaluate`. APs are fractions in [0, 1]."""

    mAP: float
    per_class_ap: dict[int, float]
    class_names: dict[int, str]
    num_groundtruth: dict[int, int]
    num_detections: dict[int, int]
    protocol: str
    stats: dict[str, int] = field(default_factory=dict)
    #: The per-keyframe cap that was applied; ``None`` = every detection kept.
    max_detections_per_keyframe: Optional[int] = MAX_DETECTIONS_PER_KEYFRAME

    def named_ap(self) -> dict[str, float]:
        """``{class name: AP}`` in label-map order."""
        return {self.class_names[c]: ap for c, ap in self.per_class_ap.items()}


def make_image_key(video_id: str, timestamp, protocol: str = "2019") -> str:
    """The official keyframe key for ``protocol`` (integer seconds in 2019, 6 decimals in 2020)."""
    return "%s,%s" % (video_id, _timestamp_key(timestamp, protocol))


def _timestamp_key(timestamp, protocol: str) -> str:
    if protocol == "2019":
        return "%04d" % int(timestamp)
    return "%.6f" % decimal.Decimal(timestamp)


def _check_protocol(protocol) -> str:
    protocol = str(protocol)
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown AVA protocol {protocol!r}; expected one of {PROTOCOLS}")
    return protocol


class _KeyIndex:
    """Assigns integer ids to keyframe keys; formats each distinct (video, timestamp) once."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.ids: dict[str, int] = {}
        self._pairs: dict[tuple, int] = {}

    def id_of(self, video_id: str, timestamp, where: str) -> int:
        pair = (video_id, timestamp)
        kid = self._pairs.get(pair)
        if kid is None:
            kid = self._new_pair(pair, self._format(timestamp), lambda: where)
        return kid

    def _format(self, timestamp) -> Optional[str]:
        """The key's timestamp part, or ``None`` if ``timestamp`` is not valid in this protocol."""
        try:
            return _timestamp_key(timestamp, self.protocol)
        except (ValueError, TypeError, decimal.InvalidOperation):
            return None

    def _new_pair(self, pair: tuple, stamp: Optional[str], where) -> int:
        if stamp is None:
            kind = "an integer second" if self.protocol == "2019" else "a number"
            raise ValueError(f"{where()}: timestamp {pair[1]!r} is not {kind} (protocol {self.protocol})")
        kid = self.ids.setdefault(f"{pair[0]},{stamp}", len(self.ids))
        self._pairs[pair] = kid
        return kid

    def rows(self, rows: AVARows) -> np.ndarray:
        """Key id of every row, assigned in order of first appearance as a row-by-row loop would."""
        n = len(rows)
        if not n:
            return np.empty(0, dtype=_index_dtype(0))
        v, t = rows.video_ids, rows.timestamps
        # Files list a keyframe's rows together: work on the first row of each run of equal pairs.
        change = np.ones(n, dtype=bool)
        change[1:] = (v[1:] != v[:-1]) | (t[1:] != t[:-1])
        heads = np.flatnonzero(change)
        uv, vinv = np.unique(v[heads], return_inverse=True)
        ut, tinv = np.unique(t[heads], return_inverse=True)
        code = vinv.reshape(-1).astype(np.int64) * len(ut) + tinv.reshape(-1)
        ucode, first, inv = np.unique(code, return_index=True, return_inverse=True)
        videos = [as_str(x) for x in uv]
        stamps = [as_str(x) for x in ut]
        formatted = [self._format(x) for x in stamps]  # once per distinct timestamp
        order = np.argsort(first, kind="stable")
        kids = []
        for j, vi, ti in zip(order.tolist(), *(x.tolist() for x in np.divmod(ucode[order], len(ut)))):
            pair = (videos[vi], stamps[ti])
            kid = self._pairs.get(pair)
            if kid is None:
                kid = self._new_pair(pair, formatted[ti], lambda: rows.location(int(heads[first[j]])))
            kids.append(kid)
        kid_of_code = np.empty(len(ucode), dtype=_index_dtype(n))
        kid_of_code[order] = kids
        return np.repeat(kid_of_code[inv.reshape(-1)], np.diff(np.r_[heads, n]))


@dataclass
class _Boxes:
    """Per-key ordered boxes after the official heap: key id, action, score, box (y1, x1, y2, x2)."""

    kid: np.ndarray
    action: np.ndarray
    score: np.ndarray
    yxyx: np.ndarray

    @staticmethod
    def concat(parts: list["_Boxes"]) -> "_Boxes":
        return _Boxes(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("kid", "action", "score", "yxyx")))

    def take(self, idx: np.ndarray) -> "_Boxes":
        return _Boxes(self.kid[idx], self.action[idx], self.score[idx], self.yxyx[idx])


_CHUNK = 1 << 20  # elements per step of the chunked loops that bound temporaries


def _index_dtype(n: int) -> type:
    """int32 row indices and key ids where they fit: halves the memory of the large sorts."""
    return np.int32 if n < 2**31 - 1 else np.int64


def _replay_heap(rows: AVARows, idx: np.ndarray, kids: np.ndarray, capacity: int) -> _Boxes:
    """Exact replay of the official per-key heap for rows ``idx`` (file order)."""
    entries: dict[int, list] = {}
    items = zip(rows.scores[idx].tolist(), rows.action_ids[idx].tolist(), *rows.boxes[idx][:, [1, 0, 3, 2]].T.tolist())
    for item, kid in zip(items, kids.tolist()):
        heap = entries.setdefault(kid, [])
        if capacity < 1 or len(heap) < capacity:
            heapq.heappush(heap, item)
        elif item[0] > heap[0][0]:
            heapq.heapreplace(heap, item)
    out_kid, out = [], []
    for kid, heap in entries.items():
        for item in sorted(heap, key=lambda t: -t[0]):  # stable, as the official code
            out_kid.append(kid)
            out.append(item)
    arr = np.array(out, dtype=np.float64).reshape(-1, 6)
    return _Boxes(np.array(out_kid, dtype=np.int64), arr[:, 1].astype(np.int64), arr[:, 0], arr[:, 2:6])


def _ordered_boxes(
    rows: AVARows, keep: np.ndarray, kid: np.ndarray, capacity: int, num_codes: int, num_keys: int
) -> Tuple["_Boxes", int]:
    """Rows ``keep`` grouped by key, each key in the official heap's order and capped, and the number of keys
    replayed. One sort by (key, descending score) is the heap's order except for surviving rows of one class tied
    on score (the heap orders them: :func:`_replay_heap`) and scores tied at the cap (:func:`_tied_at_cap`);
    elsewhere the heap's minimum only rises, so the survivors are exactly the top ``capacity``."""
    idx = np.flatnonzero(keep).astype(_index_dtype(len(keep)), copy=False)
    k, sc = kid[idx], rows.scores[idx]
    order = _key_score_order(k, sc)
    idx = idx[order]
    k = k[order]
    sc = sc[order]
    del order
    replay = np.zeros(num_keys, dtype=bool)
    rank = _rank_within_runs(k)
    starts = np.flatnonzero(rank == 0)
    ends = np.r_[starts[1:], len(k)]
    over = ends - starts > capacity if capacity > 0 else np.zeros(len(starts), dtype=bool)
    cut = np.full(len(starts), -np.inf)  # the score a row needs to survive the cap
    cut[over] = sc[starts[over] + capacity - 1]
    tied = np.flatnonzero((k[1:] == k[:-1]) & (sc[1:] == sc[:-1]))
    tied = tied[~(sc[tied] < cut[np.searchsorted(starts, tied, side="right") - 1])]
    if len(tied):  # few rows: look for a class twice among the survivors tied on (key, score)
        sel = np.unique(np.r_[tied, tied + 1])
        tk, ts, ta = k[sel], sc[sel], rows.action_ids[idx[sel]]
        o = np.lexsort((ta, ts, tk))
        tk, ts, ta = tk[o], ts[o], ta[o]
        replay[tk[1:][(tk[1:] == tk[:-1]) & (ts[1:] == ts[:-1]) & (ta[1:] == ta[:-1])]] = True
    fast = ~replay[k]
    if capacity > 0:
        fast &= rank < capacity
    del rank
    starts, ends = starts[over], ends[over]
    at_cut = (sc[starts + capacity - 1] == sc[starts + capacity]) & ~replay[k[starts]]
    if at_cut.any():
        replay[_tied_at_cap(rows, idx, k, sc, starts[at_cut], ends[at_cut], capacity, fast)] = True
        fast &= ~replay[k]
    slow_idx = np.sort(idx[replay[k]])  # the heap sees rows in file order
    fast_idx = idx[fast]
    out_k, out_sc = k[fast], sc[fast]
    del idx, k, sc, fast
    out = _Boxes(out_k, rows.action_ids[fast_idx], out_sc, rows.boxes[fast_idx][:, [1, 0, 3, 2]])
    if not len(slow_idx):
        return out, 0
    return _Boxes.concat([out, _replay_heap(rows, slow_idx, kid[slow_idx], capacity)]), int(replay.sum())


def _tied_at_cap(
    rows: AVARows,
    idx: np.ndarray,
    k: np.ndarray,
    sc: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    capacity: int,
    fast: np.ndarray,
) -> np.ndarray:
    """Mark in ``fast`` the heap's survivors of the keys at ``[starts, ends)`` whose scores tie at the cap ``s``:
    rows scoring at least ``s`` fill the heap in file order, then a row tied at ``s`` is refused and a higher one
    evicts the smallest tied ``(score, action, y1, x1, y2, x2)``; lower rows never matter. No class ties with
    itself there, so the survivors' order is free. Returns the keys NaNs leave to the exact replay."""
    lengths = ends - starts
    key = np.repeat(np.arange(len(starts)), lengths)
    pos = np.arange(len(key)) + np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    fast[pos] = False
    cut = sc[starts + capacity - 1]
    nan = np.zeros(len(starts), dtype=bool)
    nan[key[np.isnan(sc[pos])]] = True
    at_least = sc[pos] >= cut[key]
    pos, key = pos[at_least], key[at_least]
    higher = sc[pos] > cut[key]
    fast[pos[higher]] = True
    in_file_order = np.lexsort((idx[pos], key))
    pos, key, higher = pos[in_file_order], key[in_file_order], higher[in_file_order]
    first = _rank_within_runs(key) < capacity  # the rows that fill the heap
    evicted = np.bincount(key[higher & ~first], minlength=len(starts))
    pos, key = pos[~higher & first], key[~higher & first]
    b = rows.boxes[idx[pos]]
    nan[key[np.isnan(b).any(1)]] = True
    smallest_first = np.lexsort((b[:, 2], b[:, 3], b[:, 0], b[:, 1], rows.action_ids[idx[pos]], key))
    pos, key = pos[smallest_first], key[smallest_first]
    fast[pos[_rank_within_runs(key) >= evicted[key]]] = True
    return k[starts[nan]]


def _key_score_order(kid: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``np.lexsort((-score, kid))`` as one sort of packed 64-bit words (4-8x faster at 10 M rows): (key,
    float32 score, position in the key) where each key's rows are together, as files list them, and float32
    keeps a key's scores apart; else (key, dense score rank, position); NaNs or wider words: the lexsort."""
    n = len(kid)
    if n < 2 or np.isnan(score).any() or kid.min() < 0:
        return np.lexsort((-score, kid))
    if (kid[1:] >= kid[:-1]).all():
        order = _grouped_key_score_order(kid, score)
        if order is not None:
            return order
    ascending = np.argsort(score)  # any order among equal scores: only their dense rank is used
    new = np.empty(n, dtype=np.uint32)
    new[0] = 0
    for a in range(0, n - 1, _CHUNK):
        s = score[ascending[a : a + _CHUNK + 1]]
        np.not_equal(s[1:], s[:-1], out=new[a + 1 : a + len(s)], casting="unsafe")
    np.cumsum(new, out=new)
    top = int(new[-1])  # the highest dense rank
    rank = np.empty(n, dtype=np.uint32)
    rank[ascending] = new
    del ascending, new
    np.subtract(np.uint32(top), rank, out=rank)  # descending
    pos_bits = (n - 1).bit_length()
    rank_bits = top.bit_length()
    if int(kid.max()).bit_length() + rank_bits + pos_bits > 64:
        return np.lexsort((-score, kid))
    packed = np.empty(n, dtype=np.uint64)
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        part = kid[a:b].astype(np.uint64) << np.uint64(rank_bits + pos_bits)
        part |= rank[a:b].astype(np.uint64) << np.uint64(pos_bits)
        part |= np.arange(a, b, dtype=np.uint64)
        packed[a:b] = part
    del rank
    packed.sort()
    packed &= np.uint64((1 << pos_bits) - 1)
    return packed.view(np.int64)


def _grouped_key_score_order(kid: np.ndarray, score: np.ndarray) -> Optional[np.ndarray]:
    """:func:`_key_score_order` for keys that never decrease; ``None`` where float32 merges two scores of a key
    or the word needs more than 64 bits."""
    n = len(kid)
    in_key = _rank_within_runs(kid)
    pos_bits = int(in_key.max()).bit_length()
    high = np.uint64(32 + pos_bits)
    if int(kid[-1]).bit_length() + high > 64:
        return None
    packed = np.empty(n, dtype=np.uint64)
    with np.errstate(over="ignore"):  # beyond float32: inf, a merge the check below finds
        for a in range(0, n, _CHUNK):
            b = min(n, a + _CHUNK)
            bits = (score[a:b].astype(np.float32) + np.float32(0)).view(np.uint32)  # -0.0 as 0.0
            bits ^= np.where(bits >> 31, 0, 0x7FFFFFFF).astype(np.uint32)  # ascending bits, descending scores
            part = kid[a:b].astype(np.uint64) << high
            part |= bits.astype(np.uint64) << np.uint64(pos_bits)
            part |= in_key[a:b].astype(np.uint64)
            packed[a:b] = part
    packed.sort()
    # The sort keeps every key in its positions: a row's index is its key's first position plus its position.
    order = np.empty(n, dtype=np.int64)
    low = np.uint64((1 << pos_bits) - 1)
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        order[a:b] = np.arange(a, b) - in_key[a:b] + (packed[a:b] & low).astype(np.int64)
    del in_key
    for a in range(0, n - 1, _CHUNK):
        word, s = packed[a : a + _CHUNK + 1] >> np.uint64(pos_bits), score[order[a : a + _CHUNK + 1]]
        if ((word[1:] == word[:-1]) & (s[1:] != s[:-1])).any():
            return None  # two scores of a key are one float32
    return order


def _runs_by(kid: np.ndarray, rank_of_key: np.ndarray) -> np.ndarray:
    """The permutation that orders the runs of equal ``kid`` (one per key) by ``rank_of_key[kid]``, keeping the
    order inside each run: ``np.lexsort((position in run, rank_of_key[kid]))`` in linear time."""
    if not len(kid):
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, kid[1:] != kid[:-1]])
    lengths = np.diff(np.r_[starts, len(kid)])
    order = np.argsort(rank_of_key[kid[starts]])
    starts, lengths = starts[order], lengths[order]
    return np.arange(len(kid)) + np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths)


def _rank_within_runs(values: np.ndarray) -> np.ndarray:
    """Position of each element inside its run of equal consecutive values."""
    n = len(values)
    dtype = _index_dtype(n)
    if not n:
        return np.zeros(0, dtype=dtype)
    starts = np.r_[0, np.flatnonzero(values[1:] != values[:-1]) + 1].astype(dtype)
    rank = np.arange(n, dtype=dtype)
    rank -= np.repeat(starts, np.diff(np.r_[starts, n]))
    return rank


def _pairwise_iou(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Row-wise IoU of ``[P, 4]`` (y1, x1, y2, x2) pairs, same operations as the official np_box_ops."""
    heights = np.maximum(0.0, np.minimum(d[:, 2], g[:, 2]) - np.maximum(d[:, 0], g[:, 0]))
    widths = np.maximum(0.0, np.minimum(d[:, 3], g[:, 3]) - np.maximum(d[:, 1], g[:, 1]))
    inter = heights * widths
    area_d = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    area_g = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / (area_d + area_g - inter)


def _true_positives(dets: _Boxes, gts: _Boxes, num_codes: int, iou_threshold: float) -> np.ndarray:
    """Greedy matching, vectorised: a detection competes only for its own best box, so it is a true positive iff
    it is the first detection (in per-key order) whose best box is that box with IoU >= threshold."""
    tp = np.zeros(len(dets.kid), dtype=bool)
    if not len(dets.kid) or not len(gts.kid):
        return tp
    g_code = gts.kid * num_codes + gts.action
    g_order = np.argsort(g_code, kind="stable")  # keeps the per-key ground-truth order
    g_code, g_box = g_code[g_order], gts.yxyx[g_order]
    d_code = dets.kid * num_codes + dets.action
    start = np.searchsorted(g_code, d_code, side="left")
    count = np.searchsorted(g_code, d_code, side="right") - start
    has = np.flatnonzero(count)
    if not len(has):
        return tp
    cnt = count[has]
    offsets = np.r_[0, np.cumsum(cnt)[:-1]]
    pair_det = np.repeat(np.arange(len(has)), cnt)
    pair_gt = np.repeat(start[has], cnt) + np.arange(cnt.sum()) - np.repeat(offsets, cnt)
    iou = _pairwise_iou(dets.yxyx[has][pair_det], g_box[pair_gt])
    best = np.maximum.reduceat(iou, offsets)  # NaN propagates, like np.argmax picking a NaN
    is_best = iou == best[pair_det]
    first_det, first_pair = np.unique(pair_det[is_best], return_index=True)
    best_gt = np.full(len(has), -1)
    best_gt[first_det] = pair_gt[np.flatnonzero(is_best)[first_pair]]
    matched = np.flatnonzero(best >= iou_threshold)  # in detection order
    _, first = np.unique(best_gt[matched], return_index=True)
    tp[has[matched[first]]] = True
    return tp


def _average_precision(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> float:
    """VOC all-point AP of one class (official compute_precision_recall + compute_average_precision)."""
    if scores.size == 0:
        return 0.0
    labels = tp.astype(int)[np.argsort(scores)[::-1]]  # same call as the official: same tie order
    cum_tp = np.cumsum(labels)
    cum_fp = np.cumsum(1 - labels)
    precision = cum_tp.astype(float) / (cum_tp + cum_fp)
    recall = cum_tp.astype(float) / num_gt
    recall = np.concatenate([[0], recall, [1]])
    precision = np.concatenate([[0], precision, [0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    indices = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[indices] - recall[indices - 1]) * precision[indices]))


def evaluate(
    groundtruth: AVARows,
    detections: AVARows,
    label_map: Mapping[int, str],
    exclusions: Optional[Iterable[tuple]] = None,
    protocol: str = "2019",
    *,
    iou_threshold: float = 0.5,
    max_detections_per_keyframe: Optional[int] = MAX_DETECTIONS_PER_KEYFRAME,
) -> AVAResult:
    """AVA frame-mAP of ``detections`` against ``groundtruth``.

    Args:
        groundtruth, detections: rows as read by :func:`~vmae_det.formats.ava.read_ava_csv`, in file order.
        label_map: ``{action_id: name}``; the whitelist of evaluated classes.
        exclusions: ``(video_id, timestamp)`` keyframes to drop (protocol 2019 only).
        protocol: ``"2019"`` (AVA v2.1/v2.2 with excluded timestamps) or ``"2020"``.
        iou_threshold: matching threshold (0.5 in the official protocol).
        max_detections_per_keyframe: 50 is ActivityNet's protocol; ``None`` keeps every row, as VMAD and
            SlowFast do.

    Returns:
        :class:`AVAResult` with fractions (not percentages).
    """
    protocol = _check_protocol(protocol)
    cap = check_max_detections_per_keyframe(max_detections_per_keyframe)
    if not label_map:
        raise ValueError("label map is empty")
    class_ids = sorted(int(c) for c in label_map)
    if class_ids[0] < 1:
        raise ValueError("AVA action ids must be >= 1")
    if protocol == "2020" and exclusions:
        raise ValueError("protocol 2020 has no excluded timestamps; pass exclusions only with protocol 2019")
    if protocol == "2019":
        for name, rows in (("ground truth", groundtruth), ("detections", detections)):
            if rows.empty_frames:
                raise ValueError(
                    f"{rows.source}:{rows.empty_frame_lines[0]}: {name} has {len(rows.empty_frames)} row(s) with "
                    "only video_id,timestamp; those are only valid with protocol 2020"
                )
    num_class = class_ids[-1]
    keys = _KeyIndex(protocol)
    g_kid = keys.rows(groundtruth)
    for (v, t), line in zip(groundtruth.empty_frames, groundtruth.empty_frame_lines):
        keys.id_of(v, t, f"{groundtruth.source}:{line}")
    num_gt_keys = len(keys.ids)  # every key seen in the ground-truth file (protocol 2020 "known")
    d_kid = keys.rows(detections)
    excluded_ids = [keys.id_of(v, t, f"exclusions row {i + 1}") for i, (v, t) in enumerate(exclusions or ())]
    excluded = np.zeros(len(keys.ids), dtype=bool)
    excluded[excluded_ids] = True
    stats: dict[str, int] = {}

    # Ground truth: whitelist, exclusions, official per-key order.
    g_keep = np.isin(groundtruth.action_ids, class_ids) & ~excluded[g_kid]
    gts, _ = _ordered_boxes(groundtruth, g_keep, g_kid, 0, num_class + 1, len(keys.ids))
    num_gt = np.bincount(gts.action, minlength=num_class + 1)

    # Detections: whitelist, cap/sort per key, exclusions or unknown keys, degenerate boxes.
    d_white = np.isin(detections.action_ids, class_ids)
    if protocol == "2019":
        d_keep = d_white & ~excluded[d_kid]
        stats["excluded_detections"] = int((d_white & excluded[d_kid]).sum())
    else:
        d_keep = d_white & (d_kid < num_gt_keys)
        stats["ignored_detections_unknown_keyframes"] = int((d_white & (d_kid >= num_gt_keys)).sum())
    dets, stats["replayed_keyframes"] = _ordered_boxes(
        detections, d_keep, d_kid, cap or 0, num_class + 1, len(keys.ids)
    )  # internal capacity 0 = no cap
    stats["capped_detections"] = int(d_keep.sum()) - len(dets.kid)
    # Keys in the order the official dict sees them: first whitelisted row of each key.
    key_first = np.full(len(keys.ids), np.iinfo(np.int64).max)
    np.minimum.at(key_first, d_kid[d_white], np.flatnonzero(d_white))
    dets = dets.take(_runs_by(dets.kid, key_first))
    valid = (dets.yxyx[:, 0] < dets.yxyx[:, 2]) & (dets.yxyx[:, 1] < dets.yxyx[:, 3])
    stats["degenerate_detections"] = int((~valid).sum())
    dets = dets.take(np.flatnonzero(valid))

    tp = _true_positives(dets, gts, num_class + 1, iou_threshold)

    # per-class lists keep the official order; small ints take numpy's radix sort
    by_class = np.argsort(dets.action.astype(np.int16) if num_class < 2**15 else dets.action, kind="stable")
    bounds = np.searchsorted(dets.action[by_class], np.arange(num_class + 2))
    ap = np.full(num_class, np.nan)
    num_det: dict[int, int] = {}
    for c in class_ids:
        sel = by_class[bounds[c] : bounds[c + 1]]
        num_det[c] = len(sel)
        if num_gt[c] > 0:
            ap[c - 1] = _average_precision(dets.score[sel], tp[sel], int(num_gt[c]))
    missing = [c for c in class_ids if num_gt[c] == 0]
    if missing:
        logger.info("classes without ground truth (AP is NaN, left out of the mean): %s", missing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: no class has ground truth
        mean_ap = float(np.nanmean(ap))
    stats["evaluated_detections"] = len(dets.kid)
    stats["true_positives"] = int(tp.sum())
    return AVAResult(
        mAP=mean_ap,
        per_class_ap={c: float(ap[c - 1]) for c in label_map},
        class_names={int(c): str(n) for c, n in label_map.items()},
        num_groundtruth={c: int(num_gt[c]) for c in label_map},
        num_detections=num_det,
        protocol=protocol,
        stats=stats,
        max_detections_per_keyframe=cap,
    )
