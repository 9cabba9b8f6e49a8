"""Where rendered frames come from (vmae_det.demo.render_source): held frames or a second decoding pass."""

from __future__ import annotations

import numpy as np
import pytest
from demo_helpers import (
    SPARSE_PTS,
    make_timed_video,
)

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.demo import KeyframeSchedule, VideoDecodeError, VideoStreamReader


def test_render_source_is_held_frames_unless_one_keyframe_backlog_passes_the_budget(video):
    from vmae_det.demo.render_source import HeldFrames, SecondDecodePass, open_render_source

    schedule = KeyframeSchedule(fps=30, num_frames=4, stride=2)  # keyframe 0's clip ends at frame 2
    frame = np.zeros((64, 96, 3), np.uint8)
    held = open_render_source(frame, schedule, str(video), budget_bytes=3 * frame.nbytes)
    assert isinstance(held, HeldFrames) and held.name == "frames held"
    a, b = frame.copy(), frame.copy()
    held.push(a)
    held.push(b)
    assert held.num_alive == 2 and held.backlog_bytes == 2 * frame.nbytes
    taken, owned = held.take(0)
    assert taken is a and not owned and held.num_alive == 1
    held.close()
    assert held.num_alive == 0

    second = open_render_source(frame, schedule, str(video), budget_bytes=3 * frame.nbytes - 1)
    try:
        assert isinstance(second, SecondDecodePass) and second.name == "second decoding pass"
        second.push(frame)  # nothing is kept
        assert second.backlog_bytes == 0 and second.num_alive == 2
        expected = [f for _, f in VideoStreamReader(str(video))]
        for i in range(3):
            got, owned = second.take(i)
            assert owned
            np.testing.assert_array_equal(got, expected[i])
        with pytest.raises(VideoDecodeError, match="gave grid frame 3 where 5 was expected"):
            second.take(5)
    finally:
        second.close()


def test_second_decode_pass_gives_a_fresh_array_for_a_repeated_grid_frame(tmp_path):
    from vmae_det.demo.render_source import SecondDecodePass

    path = make_timed_video(tmp_path / "gaps.mp4", SPARSE_PTS[:12], 15)
    reader = VideoStreamReader(str(path))
    grid = [f for _, f in reader]
    assert reader.stats["repeated"] > 0
    source = SecondDecodePass(str(path))
    try:
        seen = []
        for i, expected in enumerate(grid):
            got, owned = source.take(i)
            np.testing.assert_array_equal(got, expected)
            assert owned and all(got is not s for s in seen)  # the caller draws on it
            got[:] = 0  # a drawing must not show on a repeat of this frame
            seen.append(got)
    finally:
        source.close()
