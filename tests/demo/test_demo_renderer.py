"""Labels per person and frames drawn in order (vmae_det.demo.renderer)."""

from __future__ import annotations

import numpy as np
import pytest
from demo_helpers import BOXES

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.demo import ActionVisualizer, BoxLabels, KeyframeSchedule


def test_top_labels_keep_the_best_k_above_the_threshold_with_names():
    from vmae_det.demo.renderer import top_labels

    scores = np.array([[0.1, 0.7, 0.5], [0.9, 0.2, 0.05]], np.float32)
    people = top_labels(BOXES, scores, {1: "walk", 2: "stand"}, top_k=2, threshold=0.3)
    assert [p.box for p in people] == [(4.0, 6.0, 30.0, 44.0), (40.0, 2.0, 90.0, 60.0)]
    assert [[(n, round(s, 2)) for n, s in p.labels] for p in people] == [
        [("stand", 0.7), ("action 3", 0.5)],
        [("walk", 0.9)],
    ]
    assert top_labels(np.zeros((0, 4)), np.zeros((0, 3)), {}, 3, 0.0) == []


def test_frame_renderer_draws_in_order_as_far_as_labels_are_known(tmp_path):
    from vmae_det.demo.render_source import HeldFrames
    from vmae_det.demo.renderer import FrameRenderer

    class Writer:
        def __init__(self):
            self.frames, self.closed = [], False

        def write(self, frame):
            self.frames.append(frame)

        def close(self):
            self.closed = True

    schedule = KeyframeSchedule(fps=1, interval=3)  # keyframes at frames 0, 3, 6
    preview = tmp_path / "p.png"
    renderer = FrameRenderer(schedule, ActionVisualizer(0), str(preview))
    renderer.video_writer = writer = Writer()
    source = HeldFrames(64 * 96 * 3)
    for i in range(8):
        source.push(np.zeros((64, 96, 3), np.uint8))
    renderer.render(7, source)
    assert renderer.next_frame == 0  # keyframe 0's labels are not known yet
    renderer.add_labels(0, [])
    renderer.add_labels(2, [BoxLabels((4, 6, 30, 44), [("walk", 0.9)])])  # out of order: held until reached
    renderer.render(7, source)
    assert renderer.next_frame == 3 and len(writer.frames) == 3 and not renderer.preview_written
    renderer.add_labels(1, [BoxLabels((4, 6, 30, 44), [])])
    renderer.render(4, source)
    assert renderer.next_frame == 5 and not renderer.preview_written  # a box without labels: no preview yet
    with pytest.raises(RuntimeError, match="rendered 5 of 8 frames"):
        renderer.finish(8)
    renderer.render(7, source)
    assert renderer.next_frame == 8 and renderer.preview_written and preview.exists()
    assert not any(f.any() for f in writer.frames[:3]) and writer.frames[3].any()  # keyframe 1's box from frame 3
    assert not np.array_equal(writer.frames[5], writer.frames[6])  # keyframe 2's label from frame 6 on
    renderer.finish(8)
    assert writer.closed and source.num_alive == 0
