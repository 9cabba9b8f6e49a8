"""Helpers shared by the test modules: tiny models, perturbed weights, small synthetic videos (OpenCV and
PyAV writers, an unindexed AVI).

The shared data are fixtures (``tests/conftest.py``); the demo tests' own helpers are ``tests/demo_helpers.py``,
the command-line tools, run in this process or in a new one, ``tests/cli_table.py`` (``run_tool``), the engine
tests' LazyConfig targets ``tests/engine_toy_parts.py``, VMAD's key layout and reference inputs
``tests/vmad_reference.py``.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from vmae_det.modeling import VideoMAE, VideoViT, build_videomae, build_vit

#: the tiny models' input: 4 frames of 32 x 32
TINY_INPUT = dict(img_size=32, num_frames=4)


def tiny_mae(seed: int = 0, encoder: dict | None = None, **kwargs) -> VideoMAE:
    """A ViT-tiny VideoMAE on :data:`TINY_INPUT`, initialised from ``seed`` (train mode).

    Args:
        encoder: more keyword arguments of the encoder (``patch_size``, ``use_mean_pooling``, ...).
        kwargs: keyword arguments of :func:`build_videomae` (``mask_ratio``, ``decoder_depth``, ...).
    """
    torch.manual_seed(seed)
    return build_videomae("tiny", encoder_kwargs={**TINY_INPUT, **(encoder or {})}, **kwargs)


def tiny_vit(seed: int = 0, **kwargs) -> VideoViT:
    """A ViT-tiny encoder on :data:`TINY_INPUT`, initialised from ``seed`` (train mode)."""
    torch.manual_seed(seed)
    return build_vit("tiny", **{**TINY_INPUT, **kwargs})


def randomize(model: nn.Module, seed: int, scale: float = 0.1) -> nn.Module:
    """Add ``scale`` x N(0, 1) to every parameter, in place, and return ``model``.

    After init, LayerNorms, q/v biases and the mask token are 0 or 1: a conversion that drops or swaps them
    would not change any output until they are perturbed.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model


def write_square_video(path: str | Path, n: int = 24, h: int = 48, w: int = 64, seed: int = 0) -> str:
    """An mp4v video of ``n`` frames: a flat background with a coloured square moving right (easy to
    reconstruct); ``seed`` picks the colours."""
    rng = np.random.RandomState(seed)
    bg, colour = rng.randint(40, 200, 3), rng.randint(0, 256, 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
    for i in range(n):
        f = np.empty((h, w, 3), np.uint8)
        f[:] = bg
        x = (2 * i) % (w - 12)
        f[18:30, x : x + 12] = colour
        writer.write(f)
    writer.release()
    return str(path)


class _Pipe(io.RawIOBase):
    """A write-only stream without seek(): what ``ffmpeg ... -f avi - > x.avi`` writes to. The AVI
    muxer cannot go back to finish its header (frame count, sizes) nor append an index."""

    def __init__(self, f):
        self._f = f

    def writable(self):
        return True

    def write(self, b):
        return self._f.write(b)


def write_video(path, frames, rate=25, codec="libx264", fmt=None, pipe=False, options=None, pts_ms=None):
    """Encode RGB ``frames`` with PyAV. ``pipe``: to a non-seekable stream (an unfinished AVI);
    ``pts_ms``: per-frame presentation times in ms (variable frame rate)."""
    import av

    with open(path, "wb") as f:
        out = av.open(_Pipe(f) if pipe else f, "w", format=fmt or Path(path).suffix[1:].replace("mkv", "matroska"))
        stream = out.add_stream(codec, rate=rate, options=options or {})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = int(pts_ms[i]), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        out.close()
    return str(path)


def transcode_to_unindexed_avi(src, dst) -> str:
    """``ffmpeg -i src -c:v mpeg4 -f avi - > dst``: the AVI a recorder that dies (or a pipe) leaves."""
    import av

    with av.open(str(src)) as c:
        stream = c.streams.video[0]
        rate = stream.average_rate
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    return write_video(dst, frames, rate=rate, codec="mpeg4", fmt="avi", pipe=True)
