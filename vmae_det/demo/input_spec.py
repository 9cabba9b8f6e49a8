"""What the demo's ``--input`` names: a video file, a camera, or a stream URL (light: no PyAV, no torch).

* an **existing file** is a file, whatever its name (a file called ``0`` too);
* **digits** (``0``, ``1`` ...) are a camera index, opened through the platform's capture device
  (:data:`WEBCAM_DEVICES`): ``/dev/video<i>`` with ``v4l2`` on Linux, ``<i>`` with ``avfoundation`` on
  macOS. DirectShow (Windows) opens cameras by name only, so there it is ``dshow:video=<name>``;
* **``<device format>:<device>``** with a device format FFmpeg knows (``v4l2:/dev/video2``,
  ``avfoundation:0``, ``dshow:video=Integrated Camera``) is that device;
* **``<scheme>://...``** (``rtsp``, ``rtmp``, ``http(s)``, ``udp``, ``tcp``, ``srt``, ``hls`` ...) is a URL
  PyAV opens;
* anything else is a file path (and a missing one is reported as such).

Files go to :class:`~.video_stream.VideoStreamReader` (unchanged); cameras and URLs to
:class:`~.live_source.LiveStreamReader`.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Optional

__all__ = ["InputSpec", "WEBCAM_DEVICES", "DEVICE_FORMATS", "parse_input", "redact", "webcam_device"]

#: ``sys.platform`` prefix -> (device path pattern, FFmpeg input format) of camera ``{index}``.
WEBCAM_DEVICES = {
    "linux": ("/dev/video{index}", "v4l2"),
    "darwin": ("{index}", "avfoundation"),
}
#: Device formats accepted as ``<format>:<device>``.
DEVICE_FORMATS = ("v4l2", "video4linux2", "avfoundation", "dshow", "x11grab", "gdigrab", "lavfi")

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class InputSpec:
    """One ``--input``, classified.

    Attributes:
        kind: ``"file"``, ``"webcam"`` or ``"url"``.
        location: what PyAV opens (the path, the device, the URL).
        format: FFmpeg input format for devices (``v4l2`` ...), else ``None`` (probed).
        name: output file stem (``<name>_actions.mp4`` ...) and default video id.
        text: the input as given (for messages).
    """

    kind: str
    location: str
    format: Optional[str]
    name: str
    text: str

    @property
    def shown(self) -> str:
        """The input for messages, logs and the summary: a URL's password replaced by ``***``."""
        return redact(self.text) if self.kind == "url" else self.text

    @property
    def live(self) -> bool:
        """A camera or a URL: read by a thread, never decoded twice."""
        return self.kind != "file"


def webcam_device(index: int, platform: Optional[str] = None) -> "tuple[str, str]":
    """``(device, input format)`` of camera ``index`` on ``platform`` (default: this one's).

    Raises ``ValueError`` where cameras are not opened by number (Windows' DirectShow opens them by name).
    """
    platform = platform or sys.platform
    for prefix, (pattern, fmt) in WEBCAM_DEVICES.items():
        if platform.startswith(prefix):
            return pattern.format(index=index), fmt
    if platform.startswith(("win", "cygwin")):
        raise ValueError(
            f"camera {index}: DirectShow opens cameras by name, not number: pass "
            "--input 'dshow:video=<camera name>' (`ffmpeg -list_devices true -f dshow -i dummy` "
            "lists the names)"
        )
    raise ValueError(
        f"camera {index}: no capture device is known for platform {platform!r}: pass "
        "--input '<ffmpeg device format>:<device>'"
    )


def parse_input(text: str, platform: Optional[str] = None) -> InputSpec:
    """Classify ``--input`` (see the module docstring)."""
    text = os.fspath(text)
    if os.path.exists(text):
        return InputSpec("file", text, None, _stem(text), text)
    if text.isdigit():
        device, fmt = webcam_device(int(text), platform)
        return InputSpec("webcam", device, fmt, f"webcam{int(text)}", text)
    head, sep, rest = text.partition(":")
    if sep and head.lower() in DEVICE_FORMATS and rest and not rest.startswith("//"):
        return InputSpec("webcam", rest, head.lower(), _safe(f"{head}_{rest}"), text)
    if _URL.match(text):
        return InputSpec("url", text, None, _url_name(text), text)
    return InputSpec("file", text, None, _stem(text), text)


def redact(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` replaced by ``***``."""
    return re.sub(r"(://[^/@:\s]*:)[^/@\s]*@", r"\1***@", text)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _url_name(url: str) -> str:
    """A file stem for a URL: its last path component, else its host and port (``cam.local_554``)."""
    rest = url.split("://", 1)[1].split("?", 1)[0].split("#", 1)[0]
    netloc, _, path = rest.partition("/")
    netloc = netloc.rsplit("@", 1)[-1]  # never user:password into a file name
    last = _stem(path.rstrip("/")) if path.strip("/") else ""
    return _safe(last or netloc) or "stream"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "stream"
