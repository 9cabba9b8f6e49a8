"""People per keyframe and batched model calls (vmae_det.demo.keyframe_batches)."""

from __future__ import annotations

import numpy as np
from demo_helpers import BOXES

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.demo import KeyframeSchedule


def test_keyframe_finder_asks_for_people_once_per_keyframe_on_its_own_frame():
    from vmae_det.demo.keyframe_batches import KeyframeFinder

    schedule = KeyframeSchedule(fps=10, interval=2.5, num_frames=4, stride=2)  # keyframes at 0, 2, 5, 8
    asked = []

    class Persons:
        def boxes_for(self, j, frame):
            asked.append((j, int(frame[0, 0, 0])))
            return BOXES[: j % 3], np.full(j % 3, 0.9, np.float32)

    found = []
    finder = KeyframeFinder(schedule, Persons(), found.append)
    for i in range(9):
        finder.push(i, np.full((2, 2, 3), i, np.uint8))
    assert asked == [(0, 0), (1, 2), (2, 5), (3, 8)]
    assert [(p.j, p.frame, len(p.boxes), p.last_needed) for p in found] == [
        (0, 0, 0, 2),
        (1, 2, 1, 4),
        (2, 5, 2, 7),
        (3, 8, 0, 10),
    ]
    assert finder.num_found == 4 and finder.next_frame == 10


class _FakePredictor:
    """Records the model calls; a request is its clip's frame numbers, scores say which keyframe they are."""

    def __init__(self):
        self.calls = []

    def make_request(self, frames, boxes, box_scores, video_id, timestamp):
        return ([int(f[0, 0, 0]) for f in frames], len(boxes), timestamp)

    def __call__(self, requests):
        self.calls.append(list(requests))
        return [np.full((n, 2), ts, np.float32) for _, n, ts in requests]


def _batcher(batch_size, scored):
    from vmae_det.demo.clip_buffer import ClipFrameBuffer
    from vmae_det.demo.keyframe_batches import KeyframeBatcher

    schedule = KeyframeSchedule(fps=1, interval=2, num_frames=2, stride=2)  # clip of k: frames k-2, k
    clips = ClipFrameBuffer(None)
    predictor = _FakePredictor()
    return schedule, clips, predictor, KeyframeBatcher(schedule, predictor, clips, "vid", batch_size, scored)


def _keyframe(schedule, j, people):
    from vmae_det.demo.keyframe_batches import PendingKeyframe

    k = schedule.frame_of(j)
    return PendingKeyframe(j, k, BOXES[:people], np.full(people, 0.9, np.float32), schedule.last_needed(k))


def test_keyframe_batcher_waits_for_clips_fills_batches_and_keeps_keyframe_order():
    out = []
    schedule, clips, predictor, batcher = _batcher(2, lambda p, s: out.append((p.j, s.shape, float(s.max(initial=-1)))))
    people = [2, 0, 1, 1, 2]  # keyframe 1 has nobody: no model input, but its place in the order is kept
    for i in range(10):
        clips.push(np.full((1, 1, 3), i, np.uint8))
        if i % 2 == 0:
            batcher.add(_keyframe(schedule, i // 2, people[i // 2]))
        batcher.advance(i)
        if i == 0:
            assert out == [] and len(batcher.waiting) == 0 and batcher.batch_requests == 1  # clip complete, batch not
    # keyframes 0 and 2 fill the first batch (keyframe 1 rides along); 3 and 4 the second one
    assert [[r[0] for r in call] for call in predictor.calls] == [[[0, 0], [2, 4]], [[4, 6], [6, 8]]]
    # scores carry the request's timestamp: keyframe j is at second 2 * j
    assert out == [(0, (2, 2), 0.0), (1, (0, 0), -1.0), (2, (1, 2), 4.0), (3, (1, 2), 6.0), (4, (2, 2), 8.0)]
    assert batcher.num_early_batches == 0 and batcher.oldest_frame(default=10) == 10


def test_keyframe_batcher_runs_early_over_budget_and_clamps_clips_at_the_end():
    out = []
    schedule, clips, predictor, batcher = _batcher(4, lambda p, s: out.append(p.j))
    for i in range(3):
        clips.push(np.full((1, 1, 3), i, np.uint8))
    for j in range(3):
        batcher.add(_keyframe(schedule, j, 1))
    batcher.advance(2)  # keyframes 0 and 1 join the batch; keyframe 2 (frame 4) waits for its clip
    assert out == [] and batcher.batch_requests == 2 and batcher.oldest_frame(default=99) == 4
    batcher.advance(2, over_budget=True)  # the frames waiting for their labels weigh too much
    assert out == [0, 1] and batcher.num_early_batches == 1
    batcher.advance(2, num_frames=3)  # the video ended: keyframe 2's clip is clamped to frame 2
    assert out == [0, 1, 2] and predictor.calls[-1][0][0] == [2, 2] and batcher.num_early_batches == 1
    none = []
    _, _, predictor, batcher = _batcher(4, lambda p, s: none.append(p.j))
    batcher.add(_keyframe(schedule, 0, 0))
    batcher.advance(5)  # a batch without people has nothing to wait for
    assert none == [0] and predictor.calls == []
