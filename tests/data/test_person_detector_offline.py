"""A failed Faster R-CNN weights download is one expected-error line naming the calling tool's flags (issue 20
item 6); the download itself is simulated (no network is touched)."""

from __future__ import annotations

import urllib.error

import pytest

from vmae_det.cli import EXPECTED_ERRORS
from vmae_det.data import person_detector
from vmae_det.demo.person_boxes import build_person_detector as demo_build


@pytest.fixture
def offline(monkeypatch):
    import torchvision.models.detection as detection

    def refuse(*args, **kwargs):
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused\nsecond line"))

    monkeypatch.setattr(detection, "fasterrcnn_resnet50_fpn", refuse)


def test_download_failure_names_the_tool_flags(offline):
    with pytest.raises(person_detector.DetectorDownloadError) as e:
        person_detector.build_person_detector("torchvision")  # tools/make_proposals.py's flags
    message = str(e.value)
    assert isinstance(e.value, EXPECTED_ERRORS) and "\n" not in message
    assert "--weights PATH" in message and "--detector hog" in message
    assert "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco" in message
    assert isinstance(e.value.__cause__, urllib.error.URLError)

    with pytest.raises(person_detector.DetectorDownloadError) as e:
        demo_build("torchvision", device="cpu")  # the demo's
    message = str(e.value)
    assert "--person-weights PATH" in message and "--person-detector hog" in message and "--weights" not in message
    assert message.startswith("could not get the torchvision fasterrcnn_resnet50_fpn COCO weights (URLError: ")
