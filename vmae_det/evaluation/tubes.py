"""Frame-AP and video-AP of spatio-temporal action tubes, equal to MultiSports' ``evaluate_multisports.py``
(one module: the inputs, matching rules and command line of one evaluator).

The official evaluator (MCG-NJU/MultiSports, from ACT's) loops in Python; this computes the same numbers with
numpy on the same inputs (ACT-format pickles), reproducing it operation for operation. The rules, and where this
raises instead of crashing, are in ``docs/tube_evaluation.md``. Console script: ``vmae-tube-eval``.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ..cli import check_output_file, run_main
from ..formats.act import TubeFormatError, check_frame_detections, check_tubes, load_groundtruth
from ..formats.atomic import atomic_write_text
from ..formats.safe_pickle import load_pickle

__all__ = [
    "SKIPPED_LABELS",
    "load_frame_detections",
    "load_video_detections",
    "frame_ap",
    "video_ap",
    "video_ap_all",
    "AP_AREAS",
    "check_threshold",
    "pr_to_ap_voc",
    "pr_to_ap_act",
    "main",
]

SKIPPED_LABELS = (
    "aerobic kick jump",
    "aerobic off axis jump",
    "aerobic butterfly jump",
    "aerobic balance turn",
    "basketball save",
    "basketball jump ball",
)


def load_frame_detections(path: str, gt: Dict[str, Any]) -> np.ndarray:
    """The ``(N, 8)`` frame-detection array, checked against the ground truth's test videos and labels (the
    official skips a row of another video or label without a word)."""
    dets = load_pickle(path)
    check_frame_detections(dets, gt["test_videos"][0], path, num_labels=len(gt["labels"]))
    return dets


def load_video_detections(path: str, gt: Dict[str, Any]) -> Dict[int, list]:
    """The ``{label_index: [(video, score, tube)]}`` video detections, checked (a list indexed by label too):
    labels of the ground truth, videos of its scored test videos."""
    dets = load_pickle(path)
    if isinstance(dets, (list, tuple)):
        dets = dict(enumerate(dets))
    if not isinstance(dets, dict):
        raise TubeFormatError(
            f"{path}: video detections must be a dict label_index -> [(video, score, tube)], got {type(dets).__name__}"
        )
    num_labels, test_videos = len(gt["labels"]), set(gt["test_videos"][0])
    checks = []
    for label, lst in dets.items():
        if (
            isinstance(label, (bool, np.bool_))
            or not isinstance(label, (int, np.integer))
            or not 0 <= label < num_labels
        ):
            raise TubeFormatError(
                f"{path}: label {label!r} is not a label index 0..{num_labels - 1} (the ground truth has "
                f"{num_labels} labels)"
            )
        if not isinstance(lst, (list, tuple)):
            raise TubeFormatError(f"{path}: detections of label {label!r} must be a list of (video, score, tube)")
        for i, d in enumerate(lst):
            if not isinstance(d, (list, tuple)) or len(d) != 3:
                raise TubeFormatError(f"{path}: detection {i} of label {label!r} must be (video, score, tube)")
            if not isinstance(d[0], str) or d[0] not in test_videos:
                raise TubeFormatError(
                    f"{path}: detection {i} of label {label!r}: video {d[0]!r} is not one of the ground truth's "
                    f"{len(test_videos)} scored test videos"
                )
            try:
                ok = math.isfinite(float(d[1]))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise TubeFormatError(f"{path}: detection {i} of label {label!r}: the score must be a finite number")
            checks.append((d[2], f"{path}: detection {i} of label {label!r} (video {d[0]!r})"))
    check_tubes(checks)
    return dets


# ------------------------------------------------------------------------------------------------------- AP
def pr_to_ap_voc(pr: np.ndarray) -> float:
    """PASCAL-VOC area under ``pr`` (rows precision, recall), the official's ``pr_to_ap_voc`` without its loop."""
    precision = np.concatenate([[0], pr[:, 0], [0]])
    recall = np.concatenate([[0], pr[:, 1], [1]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    indices = np.where(recall[1:] != recall[:-1])[0] + 1
    return np.sum((recall[indices] - recall[indices - 1]) * precision[indices])


def pr_to_ap_act(pr: np.ndarray) -> np.float32:
    """ACT's area (``pr_to_ap`` of vkalogeiton/caffe act-detector ``ACT_utils.py``): the trapezoids under ``pr``
    as ACT stores it, float32 with a first row precision 1, recall 0."""
    act = np.empty((len(pr) + 1, 2), dtype=np.float32)
    act[0] = (1.0, 0.0)
    act[1:] = pr
    return np.sum((act[1:, 1] - act[:-1, 1]) * (act[1:, 0] + act[:-1, 0]) * 0.5)


AP_AREAS = {"voc": pr_to_ap_voc, "act": pr_to_ap_act}


def _pr(is_tp: np.ndarray, gt_num: int) -> np.ndarray:
    tp = np.cumsum(is_tp, dtype=np.int64)
    pr = np.empty((len(is_tp), 2), dtype=np.float64)
    pr[:, 0] = tp / np.arange(1, len(is_tp) + 1, dtype=np.int64)
    pr[:, 1] = tp / gt_num
    return pr


def _first_matches(passing: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """True positives: passing detections (in score order) that are the first to claim their candidate."""
    is_tp = np.zeros(len(passing), dtype=bool)
    idx = np.nonzero(passing)[0]
    if len(idx):
        _, first = np.unique(candidate[idx], return_index=True)
        is_tp[idx[first]] = True
    return is_tp


def _area(ap: str):
    if ap not in AP_AREAS:
        raise ValueError(f"ap must be one of {', '.join(AP_AREAS)}, got {ap!r}")
    return AP_AREAS[ap]


def check_threshold(thr: Any, what: str = "thr") -> None:
    """Refuse an IoU threshold outside (0, 1]: the official takes any float, and NaN or one above 1 matches
    nothing (mAP 0), 0 or below everything in the video."""
    ok = isinstance(thr, (int, float, np.integer, np.floating)) and not isinstance(thr, (bool, np.bool_))
    if not (ok and math.isfinite(thr) and 0 < thr <= 1):
        raise ValueError(f"{what} {thr!r}: an IoU threshold must be a number in (0, 1]")


def _summary(results: Dict[str, np.ndarray], ap_area: str) -> Dict[str, Any]:
    area = _area(ap_area)
    class_ap = {label: area(pr) for label, pr in results.items()}
    ap = np.array([class_ap[label] for label in results])  # float32 for ACT's area, as ACT's mean
    mean = float(np.mean(100 * ap)) if len(ap) else None  # the official's number (percent)
    return {
        "mAP": float(np.mean(ap.astype(np.float64))) if len(ap) else None,
        "mAP_percent": mean,
        "per_class": {label: float(v) for label, v in class_ap.items()},
    }


def _argmax_rows(iou: np.ndarray) -> np.ndarray:
    return np.argmax(iou, axis=1) if iou.shape[1] else np.zeros(len(iou), dtype=np.int64)


# ------------------------------------------------------------------------------------------------- frame-AP
def frame_ap(gt: Dict[str, Any], alldets: np.ndarray, thr: float, ap: str = "voc") -> Dict[str, Any]:
    """Frame-AP at IoU ``thr``: ``{"mAP", "mAP_percent", "per_class": {label: AP}}`` (APs as fractions);
    ``ap``: the precision-recall area, ``"voc"`` (MultiSports') or ``"act"`` (ACT's)."""
    _area(ap)
    check_threshold(thr)
    vlist = gt["test_videos"][0]
    results: Dict[str, np.ndarray] = {}
    for ilabel, label in enumerate(gt["labels"]):
        if label in SKIPPED_LABELS:
            continue
        detections = alldets[alldets[:, 2] == ilabel, :]
        vids, frames, boxes = [], [], []
        for iv, v in enumerate(vlist):
            tubes = gt["gttubes"][v]
            if ilabel not in tubes:
                continue
            for tube in tubes[ilabel]:
                vids.append(np.full(tube.shape[0], iv, dtype=np.int64))
                frames.append(tube[:, 0].astype(np.int64))
                boxes.append(tube[:, 1:5].astype(np.float64))
        gt_num = sum(len(x) for x in vids)
        if gt_num == 0:
            continue
        gvid, gframe, gbox = np.concatenate(vids), np.concatenate(frames), np.concatenate(boxes)
        order = np.argsort(-detections[:, 3])
        dets = detections[order]
        dvid, dframe = dets[:, 0].astype(np.int64), dets[:, 1].astype(np.int64)
        dbox_native = dets[:, 4:8]
        darea = ((dbox_native[:, 2] - dbox_native[:, 0]) * (dbox_native[:, 3] - dbox_native[:, 1])).astype(np.float64)
        dbox = dbox_native.astype(np.float64)
        # group ground-truth boxes by (video, frame), keeping their official order inside a group
        fmin = min(int(gframe.min()), int(dframe.min()) if len(dframe) else 0)
        span = max(int(gframe.max()), int(dframe.max()) if len(dframe) else 0) - fmin + 1
        gkey = gvid * span + (gframe - fmin)
        gorder = np.argsort(gkey, kind="stable")
        gkey_s, gbox_s = gkey[gorder], gbox[gorder]
        garea_s = (gbox_s[:, 2] - gbox_s[:, 0]) * (gbox_s[:, 3] - gbox_s[:, 1])
        dkey = dvid * span + (dframe - fmin)
        start = np.searchsorted(gkey_s, dkey, "left")
        count = np.searchsorted(gkey_s, dkey, "right") - start
        m = int(count.max()) if len(count) else 0
        iou = np.full((len(dets), m), -np.inf)
        for j in range(m):
            rows = np.nonzero(count > j)[0]
            g = start[rows] + j
            b1, b2 = gbox_s[g], dbox[rows]
            w = np.maximum(0, np.minimum(b1[:, 2], b2[:, 2]) - np.maximum(b1[:, 0], b2[:, 0]))
            h = np.maximum(0, np.minimum(b1[:, 3], b2[:, 3]) - np.maximum(b1[:, 1], b2[:, 1]))
            ov = w * h
            with np.errstate(divide="ignore", invalid="ignore"):
                iou[rows, j] = ov / (garea_s[g] + darea[rows] - ov)
        amax = _argmax_rows(iou)
        best = iou[np.arange(len(dets)), amax] if m else np.full(len(dets), -np.inf)
        passing = (count > 0) & (best >= thr)
        is_tp = _first_matches(passing, start + amax)
        results[label] = _pr(is_tp, gt_num)
    return _summary(results, ap)


# ------------------------------------------------------------------------------------------------- video-AP
def _side_dtype(tubes: Sequence[np.ndarray]) -> np.dtype:
    dtypes = {t.dtype for t in tubes}
    if len(dtypes) == 1:
        (dt,) = dtypes
        if dt in (np.dtype(np.float32), np.dtype(np.float64)):
            return dt
    return np.dtype(np.float64)


def _flatten(tubes: Sequence[np.ndarray], dtype: np.dtype) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tubes' rows (frame x1 y1 x2 y2, in ``dtype``) concatenated, each tube's first row and length."""
    lengths = np.array([t.shape[0] for t in tubes], dtype=np.int64)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    rows = np.concatenate([t[:, :5].astype(dtype) for t in tubes]) if tubes else np.zeros((0, 5), dtype)
    return rows, first, lengths


def _tube_ious(grows, gfirst, glen, gj, drows, dfirst, dlen, di, gdt, ddt) -> np.ndarray:
    """ACT's ``iou3dt_voc`` of ground-truth tube ``gj[p]`` (b1) and detected tube ``di[p]`` (b2) for every pair p."""
    cdt = np.result_type(gdt, ddt)
    gf, gl = grows[gfirst[gj], 0], grows[gfirst[gj] + glen[gj] - 1, 0]
    df, dl = drows[dfirst[di], 0], drows[dfirst[di] + dlen[di] - 1, 0]
    # Python's max/min keep the first argument on ties: the frame scalars keep their own dtype
    tmin_d, tmax_d = df > gf, dl < gl
    umax_d, umin_d = dl > gl, df < gf
    gf64, gl64, df64, dl64 = (x.astype(np.float64) for x in (gf, gl, df, dl))
    tmin = np.where(tmin_d, df64, gf64)
    tmax = np.where(tmax_d, dl64, gl64)
    out = np.zeros(len(gj), dtype=np.float64)
    ok = ~(tmax < tmin)
    inter = tmax - tmin
    union = np.where(umax_d, dl64, gl64) - np.where(umin_d, df64, gf64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if gdt == ddt:
            ratio = inter.astype(gdt) / union.astype(gdt)
        else:  # one side float32, the other float64: float32 only where all four came from the float32 side
            f32_is_d = ddt == np.dtype(np.float32)
            from32 = lambda d_taken: d_taken if f32_is_d else ~d_taken
            all32 = from32(tmin_d) & from32(tmax_d) & from32(umax_d) & from32(umin_d)
            ratio = np.where(
                all32, (inter.astype(np.float32) / union.astype(np.float32)).astype(np.float64), inter / union
            )
    n = (inter + 1).astype(np.int64)
    gs = gfirst[gj] + (tmin - gf64).astype(np.int64)
    ds = dfirst[di] + (tmin - df64).astype(np.int64)
    garea = (grows[:, 3] - grows[:, 1]) * (grows[:, 4] - grows[:, 2])
    darea = (drows[:, 3] - drows[:, 1]) * (drows[:, 4] - drows[:, 2])
    gb, db = grows[:, 1:5].astype(cdt), drows[:, 1:5].astype(cdt)
    garea, darea = garea.astype(cdt), darea.astype(cdt)
    mean = np.zeros(len(gj), dtype=cdt)
    okp = np.nonzero(ok)[0]
    okp = okp[np.argsort(n[okp], kind="stable")]
    lengths, starts = np.unique(n[okp], return_index=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        for length, p in zip(lengths, np.split(okp, starts[1:])):  # one group per overlap length
            ar = np.arange(int(length))
            gi, dj = gs[p][:, None] + ar, ds[p][:, None] + ar
            b1, b2 = gb[gi], db[dj]
            w = np.maximum(0, np.minimum(b1[..., 2], b2[..., 2]) - np.maximum(b1[..., 0], b2[..., 0]))
            h = np.maximum(0, np.minimum(b1[..., 3], b2[..., 3]) - np.maximum(b1[..., 1], b2[..., 1]))
            ov = w * h
            per_frame = ov / (garea[gi] + darea[dj] - ov)
            # row sums of a (pairs, length) array: numpy's pairwise sum of each row, as np.mean of one tube
            mean[p] = np.true_divide(per_frame.sum(axis=1), int(length))
    if gdt == ddt:
        prod = (mean * ratio.astype(gdt)).astype(np.float64)
    else:
        prod = mean.astype(np.float64) * ratio
    out[ok] = prod[ok]
    return out


def video_ap(gt: Dict[str, Any], alldets: Dict[int, list], thr: float, ap: str = "voc") -> Dict[str, Any]:
    """Video-AP at spatio-temporal IoU ``thr``: ``{"mAP", "mAP_percent", "per_class": {label: AP}}``; ``ap`` as
    in :func:`frame_ap`."""
    _area(ap)
    check_threshold(thr)
    vlist = gt["test_videos"][0]
    res: Dict[str, np.ndarray] = {}
    for ilabel, label in enumerate(gt["labels"]):
        if label in SKIPPED_LABELS:
            continue
        detections = alldets.get(ilabel, [])
        gtv: Dict[Any, list] = {}
        for v in vlist:
            tubes = gt["gttubes"][v]
            if ilabel in tubes and len(tubes[ilabel]):
                gtv[v] = list(tubes[ilabel])
        gt_num = sum(len(g) for g in gtv.values())
        if gt_num == 0:
            continue
        order = np.argsort(-np.array([dd[1] for dd in detections])) if len(detections) else np.zeros(0, np.int64)
        # ground-truth tubes: global ids per video, in the official's order
        gt_tubes, gt_start, gt_count = [], {}, {}
        for v, tl in gtv.items():
            gt_start[v], gt_count[v] = len(gt_tubes), len(tl)
            gt_tubes.extend(tl)
        det_tubes = [detections[j][2] for j in order]
        gdt, ddt = _side_dtype(gt_tubes), _side_dtype(det_tubes) if det_tubes else np.dtype(np.float64)
        grows, gfirst, glen = _flatten(gt_tubes, gdt)
        drows, dfirst, dlen = _flatten(det_tubes, ddt)
        nd = len(order)
        dstart = np.full(nd, -1, dtype=np.int64)
        dcount = np.zeros(nd, dtype=np.int64)
        for i, j in enumerate(order):
            v = detections[j][0]
            if v in gtv:
                dstart[i], dcount[i] = gt_start[v], gt_count[v]
        m = int(dcount.max()) if nd else 0
        pi = np.repeat(np.arange(nd), dcount)
        pk = np.arange(len(pi)) - np.repeat(np.cumsum(dcount) - dcount, dcount)
        pg = dstart[pi] + pk
        iou = np.full((nd, m), -np.inf)
        iou[pi, pk] = _tube_ious(grows, gfirst, glen, pg, drows, dfirst, dlen, pi, gdt, ddt)
        amax = _argmax_rows(iou)
        best = iou[np.arange(nd), amax] if m else np.full(nd, -np.inf)
        passing = (dcount > 0) & (best >= thr)
        is_tp = _first_matches(passing, dstart + amax)
        res[label] = _pr(is_tp, gt_num)
    return _summary(res, ap)


VIDEO_AP_RANGES = (
    ("mAP_0.05:0.45", [0.05 + 0.05 * i for i in range(9)]),
    ("mAP_0.10:0.90", [0.1 + 0.1 * i for i in range(9)]),
    ("mAP_0.50:0.95", [0.5 + 0.05 * i for i in range(10)]),
)


def video_ap_all(gt: Dict[str, Any], alldets: Dict[int, list], ap: str = "voc") -> Dict[str, Any]:
    """The official ``videoAP_all``: mean video-mAP over 0.05:0.45, 0.10:0.90, 0.50:0.95 (fractions and percent),
    plus every threshold's result under ``"thresholds"``; ``ap`` as in :func:`frame_ap`."""
    _area(ap)
    scalar = np.float32 if ap == "act" else float  # the official sums the means in their dtype
    out: Dict[str, Any] = {"thresholds": {}}
    for name, thrs in VIDEO_AP_RANGES:
        total, total_fraction = 0, 0
        for thr in thrs:
            r = video_ap(gt, alldets, thr, ap)
            out["thresholds"][f"{thr:.2f}"] = r
            total += scalar(r["mAP_percent"]) if r["mAP_percent"] is not None else float("nan")
            total_fraction += r["mAP"] if r["mAP"] is not None else float("nan")
        pct, fraction = float(total / float(len(thrs))), total_fraction / float(len(thrs))
        out[name + "_percent"] = None if math.isnan(pct) else pct
        out[name] = None if math.isnan(fraction) else fraction
    return out


# ------------------------------------------------------------------------------------------------------- CLI
def _main(argv: Optional[Sequence[str]]) -> int:
    parser = argparse.ArgumentParser(prog="vmae-tube-eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=["frameAP", "videoAP", "videoAP_all"])
    parser.add_argument("groundtruth", help="ACT-format ground-truth pickle")
    parser.add_argument("detections", help="frame detections (N, 8) array or video detections dict, pickled")
    parser.add_argument("-t", "--thr", type=float, default=0.5, help="IoU threshold (frameAP, videoAP; default 0.5)")
    parser.add_argument(
        "--ap",
        choices=sorted(AP_AREAS),
        default="voc",
        help="precision-recall area: voc (MultiSports', default) or act (ACT's original trapezoids)",
    )
    parser.add_argument(
        "--split", type=int, default=0, help="index into test_videos (JHMDB split s: s - 1, act_metrics.json's split)"
    )
    parser.add_argument("--output-json", default=None, help="write mAP (fraction) and per-class APs here")
    args = parser.parse_args(argv)
    check_threshold(args.thr, "-t/--thr")
    if args.output_json:
        check_output_file(args.output_json)
    gt = load_groundtruth(args.groundtruth, args.split)
    if args.task == "frameAP":
        result = frame_ap(gt, load_frame_detections(args.detections, gt), args.thr, args.ap)
    elif args.task == "videoAP":
        result = video_ap(gt, load_video_detections(args.detections, gt), args.thr, args.ap)
    else:
        result = video_ap_all(gt, load_video_detections(args.detections, gt), args.ap)
    if args.task == "videoAP_all":
        for name, _ in VIDEO_AP_RANGES:
            v = result[name + "_percent"]
            print(f"VideoAP_{name[4:]}: " + ("nan" if v is None else f"{v:8.2f}"))
    else:
        print(f"{args.task}_{args.thr}")
        for label, ap in result["per_class"].items():
            print(f"{label:20s} {100 * ap:8.2f}")
        print(f"{'mAP':20s} " + ("nan" if result["mAP_percent"] is None else f"{result['mAP_percent']:8.2f}"))
    if args.output_json:
        threshold = {} if args.task == "videoAP_all" else {"threshold": args.thr}
        payload = {"task": args.task, "ap": args.ap, "split": args.split, **threshold, **result}
        atomic_write_text(args.output_json, json.dumps(payload, indent=1) + "\n")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console entry point: bad input -> one ``error:`` line and exit code 2."""
    return run_main(lambda: _main(argv), interrupted="nothing written")


if __name__ == "__main__":
    raise SystemExit(main())
