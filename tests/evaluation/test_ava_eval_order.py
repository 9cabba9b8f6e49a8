"""The evaluator's per-keyframe order: its sorts equal ``np.lexsort``, and its survivors of the official top-N
heap equal an exact replay of that heap, tied scores at the cap included."""

from __future__ import annotations

import numpy as np
import pytest

from vmae_det.evaluation import ava_map
from vmae_det.formats.ava import AVARows

SCORES = np.array([0.5, 0.25, -0.0, 0.0, np.inf, -np.inf, 1e-300, 0.1, 0.1 + 1e-12, 1e300, -1e300, 3e38, 4e38, -2.5])


def test_key_score_order_equals_lexsort(monkeypatch):
    """Both packed sorts (float32 bits for grouped keys, dense ranks otherwise) and the lexsort fallback."""
    taken = {"float32": 0, "rank": 0}
    grouped = ava_map._grouped_key_score_order

    def counted(kid, score):
        order = grouped(kid, score)
        taken["float32" if order is not None else "rank"] += 1
        return order

    monkeypatch.setattr(ava_map, "_grouped_key_score_order", counted)
    rng = np.random.default_rng(0)
    for trial in range(400):
        n = int(rng.integers(0, 200))
        kid = rng.integers(0, int(rng.integers(1, 20)), n).astype(np.int32)
        if trial % 3:
            kid = np.sort(kid)  # the rows of a key together, as files list them
        score = rng.choice(SCORES, n) if trial % 2 else np.round(rng.random(n), int(rng.integers(1, 9)))
        if trial % 17 == 0 and n:
            score[rng.integers(n)] = np.nan
        np.testing.assert_array_equal(ava_map._key_score_order(kid, score), np.lexsort((-score, kid)), str(trial))
    assert taken["float32"] > 50 and taken["rank"] > 50  # float32 merges 0.1 and 0.1 + 1e-12, 3e38 and 4e38


def test_runs_by_equals_lexsort():
    rng = np.random.default_rng(1)
    for _ in range(50):
        kid = np.repeat(rng.permutation(30)[: rng.integers(0, 30)], rng.integers(1, 6))
        rank_of_key = rng.permutation(30)
        expected = np.lexsort((ava_map._rank_within_runs(kid), rank_of_key[kid]))
        np.testing.assert_array_equal(ava_map._runs_by(kid, rank_of_key), expected)


def _per_class(boxes: ava_map._Boxes) -> dict:
    """Each (key, class)'s rows in output order: what matching and AP depend on."""
    out: dict = {}
    for k, a, s, b in zip(boxes.kid.tolist(), boxes.action.tolist(), boxes.score.tolist(), boxes.yxyx.tolist()):
        out.setdefault((k, a), []).append((s, *b))
    return out


@pytest.mark.parametrize("classes", ["distinct", "repeated"])
def test_ordered_boxes_equal_the_heap_replay(classes):
    """Keyframes with many scores tied at the cap; with distinct classes no keyframe needs the replay."""
    rng = np.random.default_rng(2)
    without_replay = 0
    for trial in range(150):
        keys, cap = int(rng.integers(1, 6)), int(rng.integers(1, 12))
        n = rng.integers(1, 40, keys)
        rows = []
        for key in range(keys):
            action = rng.permutation(99)[: n[key]] + 1 if classes == "distinct" else rng.integers(1, 5, n[key])
            score = rng.choice([0.1, 0.2, 0.3, 0.4, 0.5], n[key]) if trial % 2 else np.round(rng.random(n[key]), 1)
            box = np.round(rng.random((n[key], 4)), 1)
            if trial % 5 == 0:
                box[:] = box[0]  # equal boxes: the heap then breaks ties by class alone
            rows += [(f"v{key}", "0902", b, a, s) for b, a, s in zip(box, action, score)]
        if trial % 7 == 0:
            rows = [rows[i] for i in rng.permutation(len(rows))]  # keys interleaved
        data = AVARows.from_arrays(*(list(c) for c in zip(*rows)))
        index = ava_map._KeyIndex("2019")
        kid = index.rows(data)
        got, replayed = ava_map._ordered_boxes(data, np.ones(len(data), bool), kid, cap, 100, len(index.ids))
        expected = ava_map._replay_heap(data, np.arange(len(data)), kid, cap)
        assert _per_class(got) == _per_class(expected), trial
        without_replay += replayed == 0
    if classes == "distinct":
        assert without_replay == 150
