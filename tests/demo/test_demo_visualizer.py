"""Drawing boxes and labels (vmae_det.demo.visualizer)."""

from __future__ import annotations

import numpy as np

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.demo import ActionVisualizer, BoxLabels


def test_visualizer_draws_box_and_label_background_in_the_box_colour():
    vis = ActionVisualizer(min_short_side=0)
    frame = np.zeros((120, 160, 3), np.uint8)
    out = vis.draw(frame, [BoxLabels((20, 50, 80, 110), [("walk", 0.9), ("jump", 0.4)])])
    color = np.array(vis.color(0))
    assert (out[50, 20:81] == color).all()  # top edge of the box
    label_area = out[:50, 20:80]  # labels sit above the box
    assert (label_area == color).all(-1).sum() > 200  # filled background
    assert (label_area > 200).all(-1).sum() > 10  # white text
    assert not frame.any()  # input untouched
    assert vis.color(1) != vis.color(0)


def test_visualizer_layout_cache_follows_the_labels_and_inplace_draws_on_the_frame():
    vis = ActionVisualizer(min_short_side=0)
    frame = np.random.RandomState(0).randint(0, 255, (120, 160, 3), np.uint8)
    people = [BoxLabels((20, 50, 80, 110), [("walk", 0.9)])]
    first = vis.draw(frame, people)
    np.testing.assert_array_equal(vis.draw(frame, people), first)
    people[0].labels.append(("jump", 0.4))  # the same list, changed: a new layout
    changed = vis.draw(frame, people)
    np.testing.assert_array_equal(changed, ActionVisualizer(min_short_side=0).draw(frame, people))
    assert not np.array_equal(changed, first)
    own = frame.copy()
    assert vis.draw(own, people, inplace=True) is own
    np.testing.assert_array_equal(own, changed)


def test_labels_stay_on_the_canvas_for_boxes_at_the_right_edge():
    vis = ActionVisualizer(min_short_side=0)
    out = vis.draw(np.zeros((100, 100, 3), np.uint8), [BoxLabels((85, 40, 99, 90), [("a long label", 0.5)])])
    color = np.array(vis.color(0))
    filled_cols = np.flatnonzero((out[:40] == color).all(-1).any(0))
    assert filled_cols.min() < 85 and filled_cols.max() == 99  # shifted left, not cut off
