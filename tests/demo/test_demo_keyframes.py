"""The keyframe grid and clip geometry (vmae_det.demo.keyframes): whole seconds, centred clips, clips resampled to the
model's frame rate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from demo_helpers import BOXES, fixed_detector, make_predictor, make_video

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.data.ava.clip_source import clip_indices
from vmae_det.demo import DemoSettings, KeyframeSchedule, VideoStreamReader, run_demo


def test_keyframe_grid_defaults_to_whole_seconds_even_at_ntsc_fps():
    s = KeyframeSchedule(fps=30000 / 1001, num_frames=4, stride=2)
    assert [s.frame_of(j) for j in range(4)] == [0, 30, 60, 90]  # round(j * 29.97)
    assert s.time_of(100) == pytest.approx(100.0)
    assert s.frame_of(100) == 2997
    assert s.index_of_time(100.0) == 100 and s.index_of_time(100.5) is None and s.index_of_time(-1) is None
    off = KeyframeSchedule(fps=30, interval=15, time_offset=900)
    assert off.index_of_time(902.5) == 5 and off.time_of(5) == 902.5
    with pytest.raises(ValueError):
        KeyframeSchedule(fps=30, interval=0.5)


def test_clip_is_centred_on_the_keyframe_and_clamped_at_the_ends():
    s = KeyframeSchedule(fps=30, num_frames=4, stride=2)
    assert s.clip_indices(10) == [6, 8, 10, 12]
    assert s.clip_indices(1) == [0, 0, 1, 3]
    assert s.clip_indices(20, num_video_frames=22) == [16, 18, 20, 21]
    assert s.first_needed(10) == 6 and s.last_needed(10) == 12 and s.span == 8
    # The clip offset (VMAD: 1 at stride 4) shifts every index; the maths is the evaluation's.
    o = KeyframeSchedule(fps=30, num_frames=4, stride=4, offset=1)
    assert o.clip_indices(20) == [13, 17, 21, 25] and o.first_needed(20) == 13 and o.last_needed(20) == 25
    assert o.clip_indices(2) == [0, 0, 3, 7] and o.clip_indices(60, num_video_frames=64) == [53, 57, 61, 63]
    for k, n in ((20, None), (2, None), (60, 64), (0, 1)):
        expected = clip_indices(k, 4, 4, n or 10**6, offset=1).tolist()
        assert o.clip_indices(k, num_video_frames=n) == expected


def test_clips_span_the_model_time_when_the_video_runs_at_another_rate(tmp_path):
    s = KeyframeSchedule(fps=10, num_frames=4, stride=3, model_fps=30)
    assert s.resampled and s.clip_indices(50) == [48, 49, 50, 51] and s.span == 4  # -6,-3,0,3 model frames
    assert KeyframeSchedule(fps=60, num_frames=4, stride=3, model_fps=30).clip_indices(50) == [38, 44, 50, 56]
    assert KeyframeSchedule(fps=10, num_frames=4, stride=3, model_fps=30).clip_indices(1) == [0, 0, 1, 2]
    same = KeyframeSchedule(fps=30, num_frames=4, stride=3, model_fps=30, offset=1)
    assert not same.resampled and same.clip_indices(50) == clip_indices(50, 4, 3, 10**6, offset=1).tolist()

    video = make_video(tmp_path / "ten.mp4", 40, fps=10)  # 4 s at 10 fps
    predictor = make_predictor(num_frames=4, stride=2)
    frames = [f for _, f in VideoStreamReader(str(video))]
    for model_fps, expected in ((30, [19, 19, 20, 21]), (10, [16, 18, 20, 22])):
        summary = run_demo(
            DemoSettings(
                str(video),
                str(tmp_path / f"o{model_fps}"),
                model_fps=model_fps,
                progress=False,
                preview=False,
                render_min_short_side=0,
            ),
            predictor,
            fixed_detector,
        )
        data = json.loads(Path(summary["outputs"]["json"]).read_text())
        assert data["clips_resampled"] == (model_fps == 30)
        assert data["clip_seconds"] == pytest.approx(8 / model_fps, abs=1e-6)
        assert data["keyframes"][2]["frame"] == 20  # second 2
        clip, boxes = predictor.prepare_clip([frames[i] for i in expected], BOXES)
        with torch.no_grad():
            want = predictor.model(
                [
                    {
                        "clip": clip,
                        "boxes": torch.from_numpy(boxes),
                        "box_scores": torch.tensor([0.9, 0.8]),
                        "clip_size": tuple(clip.shape[-2:]),
                    }
                ]
            )[0]["scores"].numpy()
        got = [[p["actions"][str(a)] for a in (1, 2, 3)] for p in data["keyframes"][2]["people"]]
        np.testing.assert_allclose(got, want, atol=2e-6)
