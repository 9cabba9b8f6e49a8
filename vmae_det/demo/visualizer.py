"""Draw person boxes and their top-k action labels on a frame (OpenCV).

Colours come from detectron2's colormap, indexed by the person's track id when the demo tracks people
(:mod:`.tracking`: the same person keeps the colour, and ``#<id>`` starts their labels), else by the box's
position within its keyframe, so a rendering is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from detectron2.utils.colormap import colormap

__all__ = ["BoxLabels", "ActionVisualizer"]


@dataclass
class BoxLabels:
    """What to draw for one person: absolute xyxy box (frame pixels), ``(name, score)`` labels and the
    track id (``None``: untracked)."""

    box: Tuple[float, float, float, float]
    labels: List[Tuple[str, float]] = field(default_factory=list)
    track_id: Optional[int] = None

    def lines(self) -> List[str]:
        """The label block's text lines: ``#<id>`` leads the first one."""
        lines = [f"{name} {score:.2f}" for name, score in self.labels]
        if self.track_id is not None:
            lines[:1] = [" ".join([f"#{self.track_id}"] + lines[:1])]
        return lines


class ActionVisualizer:
    """Renders :class:`BoxLabels` onto RGB frames, optionally upscaling small frames first.

    Args:
        min_short_side: frames whose short side is smaller are upscaled to it before drawing, so
            labels stay legible on tiny videos (0 disables).
        max_long_side: the upscaling stops where the long side would pass this (a 16x2048 video
            would otherwise become 360x46080, more than H.264 encodes); frames already larger are
            drawn at their own size.
    """

    def __init__(self, min_short_side: int = 360, max_long_side: int = 4096) -> None:
        self.min_short_side = int(min_short_side)
        self.max_long_side = int(max_long_side)
        self._colors = (colormap(rgb=True, maximum=255)).astype(int)
        self._cache = None

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        """``(H, W)`` of the rendered frames for input frames of ``(height, width)``."""
        scale = self._scale(height, width)
        return int(round(height * scale)), int(round(width * scale))

    def _scale(self, height: int, width: int) -> float:
        short, long = min(height, width), max(height, width)
        if self.min_short_side <= 0 or short >= self.min_short_side:
            return 1.0
        scale = self.min_short_side / short
        if self.max_long_side > 0 and long * scale > self.max_long_side:
            scale = max(1.0, self.max_long_side / long)
        return scale

    def color(self, index: int) -> Tuple[int, int, int]:
        return tuple(int(c) for c in self._colors[index % len(self._colors)])

    def draw(self, frame_rgb: np.ndarray, people: Sequence[BoxLabels], inplace: bool = False) -> np.ndarray:
        """Return the RGB frame (possibly upscaled) with boxes and labels drawn.

        A new array unless ``inplace`` is set and no upscaling is needed: then ``frame_rgb`` itself is
        drawn on (the demo does so with frames it converted for rendering only). The layout (box
        corners, label blocks and text sizes) depends only on ``people`` and the frame size, so it is
        computed once for consecutive frames drawn with equal ``people``.
        """
        h, w = frame_rgb.shape[:2]
        out_h, out_w = self.output_size(h, w)
        if (out_h, out_w) != (h, w):
            canvas = cv2.resize(frame_rgb, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        else:
            canvas = frame_rgb if inplace else frame_rgb.copy()
        layout = self._layout(people, h, w, out_h, out_w)
        font = cv2.FONT_HERSHEY_SIMPLEX
        for color, p1, p2, thickness, blocks, font_scale, text_color in layout:
            cv2.rectangle(canvas, p1, p2, color, thickness)
            for top_left, bottom_right, text, org in blocks:
                cv2.rectangle(canvas, top_left, bottom_right, color, -1)
                cv2.putText(canvas, text, org, font, font_scale, text_color, 1, cv2.LINE_AA)
        return canvas

    def _layout(self, people: Sequence[BoxLabels], h: int, w: int, out_h: int, out_w: int) -> List[tuple]:
        # What the layout depends on, by value: a caller may change its list between calls.
        key = (h, w, out_h, out_w, [(tuple(map(float, p.box)), tuple(p.labels), p.track_id) for p in people])
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        sx, sy = out_w / w, out_h / h
        font_scale = max(0.35, min(out_h, out_w) / 900.0)
        thickness = max(1, int(round(min(out_h, out_w) / 300)))
        layout = []
        for i, person in enumerate(people):
            color = self.color(i if person.track_id is None else person.track_id - 1)  # ids start at 1
            x1, y1, x2, y2 = person.box
            p1 = (int(round(x1 * sx)), int(round(y1 * sy)))
            p2 = (int(round(x2 * sx)), int(round(y2 * sy)))
            text_color = (0, 0, 0) if sum(color) > 382 else (255, 255, 255)
            layout.append(
                (
                    color,
                    p1,
                    p2,
                    thickness,
                    self._label_blocks(out_w, p1, person.lines(), font_scale),
                    font_scale,
                    text_color,
                )
            )
        self._cache = (key, layout)
        return layout

    @staticmethod
    def _label_blocks(canvas_w: int, p1, lines: List[str], font_scale) -> List[tuple]:
        font = cv2.FONT_HERSHEY_SIMPLEX
        if not lines:
            return []
        sizes = [cv2.getTextSize(t, font, font_scale, 1) for t in lines]
        line_h = max(s[0][1] + s[1] for s in sizes) + 2
        block_h = line_h * len(lines)
        # Above the box when there is room, else inside its top edge.
        y0 = p1[1] - block_h if p1[1] - block_h >= 0 else p1[1]
        block_w = max(s[0][0] for s in sizes) + 4
        # Keep the whole label block on the canvas (boxes touching the right edge are common).
        x0 = max(min(p1[0], canvas_w - block_w), 0)
        blocks = []
        for k, (text, ((tw, th), base)) in enumerate(zip(lines, sizes)):
            top = y0 + k * line_h
            blocks.append(((x0, top), (x0 + tw + 4, top + line_h), text, (x0 + 2, top + th + 1)))
        return blocks
