"""``--show``: the demo's rendered frames also in an OpenCV window, when one can be opened.

The output file is always written; the window is extra. Without a display (no ``DISPLAY`` /
``WAYLAND_DISPLAY`` on Linux) or with a headless OpenCV build (``opencv-python-headless``, whose
``imshow`` is not implemented) :func:`open_window` warns once and returns ``None``: the run goes on,
file output only. In the window, ``q`` or Esc ends the input early, as ``--max-seconds`` does (the
outputs are finished up to there); so does closing the window.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Optional

import cv2
import numpy as np

__all__ = ["FrameWindow", "ShowingWriter", "open_window", "display_available"]

logger = logging.getLogger(__name__)

#: Keys that end the input from the window (``q``, Esc).
STOP_KEYS = (ord("q"), 27)


def display_available() -> Optional[str]:
    """``None`` when a window can be tried, else why not."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    return None


class FrameWindow:
    """One OpenCV window showing RGB frames; :attr:`closed_by_user` once ``q``/Esc or the close button."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.closed_by_user = False
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)  # raises cv2.error on a headless build

    def show(self, frame_rgb: np.ndarray) -> None:
        if self.closed_by_user:
            return
        cv2.imshow(self.title, cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF  # also lets the window repaint
        try:
            visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            visible = False
        if key in STOP_KEYS or not visible:
            self.closed_by_user = True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error as e:
            logger.debug("closing the window: %s", e)


def open_window(title: str) -> Optional[FrameWindow]:
    """A :class:`FrameWindow`, or ``None`` with a warning when no window can be opened here."""
    why = display_available()
    if why is None:
        try:
            return FrameWindow(title)
        except cv2.error as e:
            why = f"OpenCV cannot open a window (a headless build? {str(e).strip().splitlines()[-1]})"
    logger.warning("--show: %s; writing the output file only", why)
    return None


class ShowingWriter:
    """A video writer that also shows every frame it encodes in ``window`` (the caller watches
    ``window.closed_by_user``)."""

    def __init__(self, writer, window: FrameWindow) -> None:
        self.writer = writer
        self.window = window

    @property
    def codec(self) -> str:
        return self.writer.codec

    def write(self, frame_rgb: np.ndarray) -> None:
        self.writer.write(frame_rgb)
        self.window.show(frame_rgb)

    def close(self) -> None:
        self.window.close()
        self.writer.close()

    def abort(self) -> None:
        self.window.close()
        self.writer.abort()
