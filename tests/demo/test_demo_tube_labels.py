"""Single-label (softmax) models in the demo: one label per tracked person (a tube), drawn with its track id."""

from __future__ import annotations

import types

import pytest
from demo_helpers import fixed_detector, make_predictor

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.demo import DemoSettings, pipeline, run_demo
from vmae_det.demo.labels import single_label_model


def test_single_label_model_from_the_loss_or_the_dataset():
    from detectron2.data import MetadataCatalog

    MetadataCatalog.get("demo_single_label_test").set(multi_label=False)
    softmax, sigmoid, bare = (types.SimpleNamespace(loss="softmax_ce"), types.SimpleNamespace(loss="sigmoid_bce"), None)
    assert single_label_model(softmax) and single_label_model(softmax, "ava_v2.2_val")
    assert not single_label_model(sigmoid) and not single_label_model(sigmoid, "demo_single_label_test")  # loss first
    assert single_label_model(bare, "demo_single_label_test")
    assert not single_label_model(bare, "ava_v2.2_val") and not single_label_model(bare)


@pytest.mark.parametrize("single_label, labels_per_person", [(True, 1), (False, 3)])
def test_drawn_labels_per_person(video, tmp_path, monkeypatch, single_label, labels_per_person):
    drawn = []

    def recording(*args, **kwargs):
        people = top_labels(*args, **kwargs)
        drawn.extend(people)
        return people

    top_labels = pipeline.top_labels
    monkeypatch.setattr(pipeline, "top_labels", recording)
    predictor = make_predictor()
    predictor.single_label = single_label
    settings = DemoSettings(str(video), str(tmp_path / "out"), top_k=3, render_min_short_side=0, progress=False)
    summary = run_demo(settings, predictor, fixed_detector)
    assert len(drawn) == summary["num_boxes"] == 6
    assert all(len(p.labels) == labels_per_person for p in drawn)
    assert sorted({p.track_id for p in drawn}) == [1, 2]  # the same two people on every keyframe
    first = drawn[0].lines()[0]
    assert first.startswith("#1 ") and first.count(" ") == 2  # "#<id> <name> <score>"
