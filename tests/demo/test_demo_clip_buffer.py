"""The model-size frame buffer (vmae_det.demo.clip_buffer)."""

from __future__ import annotations

import numpy as np

import vmae_det  # noqa: F401  (detectron2 shims first)


class _CountingTransform:
    """A stand-in FrameTransform: halves the frame, counts its calls."""

    def __init__(self):
        self.calls = 0

    def apply(self, frame):
        self.calls += 1
        return frame[::2, ::2].copy()


def test_clip_frame_buffer_transforms_each_decoded_frame_once_and_forgets_from_the_front():
    from vmae_det.demo.clip_buffer import ClipFrameBuffer

    transform = _CountingTransform()
    buf = ClipFrameBuffer(transform)
    frames = [np.full((4, 6, 3), i, np.uint8) for i in range(5)]
    for f in frames[:3] + [frames[2]] + frames[3:]:  # grid frame 3 repeats decoded frame 2 (same array)
        buf.push(f)
    assert len(buf) == 6 and buf.base == 0 and transform.calls == 5
    got = buf.frames([0, 2, 3, 5])
    assert [int(f[0, 0, 0]) for f in got] == [0, 2, 2, 4] and got[0].shape == (2, 3, 3)
    assert got[1] is got[2]  # the repeat shares the small copy
    buf.forget_before(4)
    assert buf.base == 4 and len(buf) == 2 and int(buf.frames([4])[0][0, 0, 0]) == 3
    buf.forget_before(2)  # never backwards
    assert buf.base == 4
    buf.clear()
    assert len(buf) == 0
    raw = ClipFrameBuffer(None)  # a random test transform: full frames, as pushed
    raw.push(frames[1])
    assert raw.frames([0])[0] is frames[1] and raw.transform is None
