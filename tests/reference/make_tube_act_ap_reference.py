"""Reference numbers for the tube evaluator's ``ap="act"`` switch (tests/evaluation/test_tube_eval.py).

MultiSports' ``evaluate_multisports.py`` is ACT's evaluator with one change, the precision-recall area. This runs
it on the cases of make_tube_reference.py with ACT's own area put back: its ``pr_to_ap_voc`` replaced, at run time,
by ACT's ``pr_to_ap`` (vkalogeiton/caffe, branch act-detector, ``act-detector-scripts/ACT_utils.py``) applied to
the curve as ACT's ``frameAP`` / ``videoAP`` store it (float32, a first row precision 1, recall 0). Writes
``tests/reference/tube_act_ap_reference.json`` (numbers only).

    git clone -b act-detector https://github.com/vkalogeiton/caffe /tmp/act
    python tests/reference/make_tube_act_ap_reference.py --official /tmp/multisports/evaluate_multisports.py \\
        --act /tmp/act/act-detector-scripts/ACT_utils.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pickle
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tube_reference as ref  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tube_act_ap_reference.json")


def act_area(act_utils_path):
    """ACT's ``pr_to_ap`` on the curve as ACT builds it (its module defines functions only; they run as written)."""
    ns = {"__name__": "ACT_utils_official"}
    exec(compile(open(act_utils_path).read(), act_utils_path, "exec"), ns)
    pr_to_ap = ns["pr_to_ap"]

    def area(pr):
        act = np.empty((pr.shape[0] + 1, 2), dtype=np.float32)  # ACT's frameAP / videoAP: pr[0] = (1, 0)
        act[0, 0] = 1.0
        act[0, 1] = 0.0
        act[1:] = pr
        return pr_to_ap(act)

    return area


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official", default="/tmp/multisports/evaluate_multisports.py")
    ap.add_argument("--act", required=True, help="act-detector-scripts/ACT_utils.py of vkalogeiton/caffe")
    args = ap.parse_args()
    off = ref.load_official(args.official)
    area = act_area(args.act)
    calls = off["ap_calls"]

    def recording(pr):
        value = area(pr)
        calls.append(float(value))
        return value

    off["pr_to_ap_voc"] = recording
    out = {"numpy": np.__version__, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (gt, fd, vd) in ref.build_cases().items():
            g, f, v = (os.path.join(tmp, f"{name}_{k}.pkl") for k in ("gt", "fd", "vd"))
            for p, obj in ((g, gt), (f, fd), (v, vd)):
                with open(p, "wb") as fh:
                    pickle.dump(obj, fh, protocol=2)
            res = {}
            with contextlib.redirect_stdout(io.StringIO()):
                for task, fn, det, thrs in (
                    ("frameAP", off["frameAP"], f, ref.FRAME_THRS),
                    ("videoAP", off["videoAP"], v, ref.VIDEO_THRS),
                ):
                    for t in thrs:
                        mean, classes = ref._class_aps(off, fn, g, det, t, False)
                        res[f"{task}@{t!r}"], res[f"{task}_classes@{t!r}"] = mean, classes
                low, alla, high = off["videoAP_all"](g, v)
            res["videoAP_all"] = {
                "mAP_0.05:0.45": float(low),
                "mAP_0.10:0.90": float(alla),
                "mAP_0.50:0.95": float(high),
            }
            out["cases"][name] = res
    with open(OUT, "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
