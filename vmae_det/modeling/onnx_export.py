"""Export the action detector's tensor path (clip + RoIs -> action probabilities) to ONNX.

The exported graph is ``AVAActionDetector.forward_tensors``: inputs ``clip`` float32
``[B, 3, T, H, W]`` in 0-255 and ``rois`` float32 ``[K, 5]`` (batch index, x1, y1, x2, y2 in clip
pixels); output ``scores`` ``[K, C]`` probabilities (sigmoid; softmax for ``loss="softmax_ce"``), before
multiplying by the person score. ``B`` and ``K`` are dynamic; ``T, H, W`` are fixed at export time because the ViT's
position table is resized for the clip size while tracing.

The RoIs are the boxes RoIAlign pools, so apply the detector's test-time box extension first
(``vmae_det.modeling.vmad_boxes.extend_boxes`` with ``model.test_box_extension``, clamped to each
clip's own size), as ``AVAActionDetector.inference`` does. RoIAlign maps to ONNX ``RoiAlign`` with
``coordinate_transformation_mode`` ``"output_half_pixel"`` (``aligned=False``, the VMAD default) or
``"half_pixel"`` (``aligned=True``); opset >= 16.
"""

from __future__ import annotations

import logging
import warnings
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

__all__ = [
    "ExportCheckError",
    "TensorPath",
    "check_finite_model",
    "compare_with_pytorch",
    "example_inputs",
    "export_action_detector",
    "run_onnx",
]

logger = logging.getLogger(__name__)

MIN_OPSET = 16


class ExportCheckError(ValueError):
    """The model or its export is unusable: NaN/inf weights or scores, or ONNX output that differs from
    PyTorch's. A ``ValueError`` so ``tools/export_onnx.py`` ends with ``error: <message>``."""


def _where(model: nn.Module) -> str:
    source = getattr(model, "weights_source", None)
    return f"{type(model).__name__}" + (f" (weights from {source})" if source else "")


def check_finite_model(model: nn.Module) -> None:
    """Raise :class:`ExportCheckError` naming the tensors when a parameter or buffer of ``model`` holds NaN/inf:
    an export of it would only ever output NaN."""
    bad = [
        name
        for name, t in list(model.named_parameters()) + list(model.named_buffers())
        if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all())
    ]
    if bad:
        shown = ", ".join(bad[:5]) + (f", ... (+{len(bad) - 5})" if len(bad) > 5 else "")
        raise ExportCheckError(
            f"{_where(model)}: {len(bad)} weight tensor(s) hold NaN/inf values ({shown}); "
            "refusing to export a model whose every score would be NaN"
        )


class TensorPath(nn.Module):
    """Adapter exposing ``model.forward_tensors(clip, rois)`` as ``forward`` for tracing."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not hasattr(model, "forward_tensors"):
            raise TypeError(f"{type(model).__name__} has no forward_tensors(clip, rois): cannot export")
        self.model = model

    def forward(self, clip: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return self.model.forward_tensors(clip, rois)


def example_inputs(clip_shape: Sequence[int], num_rois: int = 3, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """A random 0-255 clip ``[B, 3, T, H, W]`` and ``num_rois`` valid RoIs spread over the batch."""
    g = torch.Generator().manual_seed(seed)
    b, _, _, h, w = clip_shape
    clip = torch.randint(0, 256, tuple(clip_shape), generator=g).float()
    xy1 = torch.rand(num_rois, 2, generator=g) * torch.tensor([w * 0.6, h * 0.6])
    wh = (torch.rand(num_rois, 2, generator=g) * 0.4 + 0.1) * torch.tensor([w, h])
    batch_index = (torch.arange(num_rois) % b).float().view(-1, 1)
    return clip, torch.cat([batch_index, xy1, xy1 + wh], dim=1)


def export_action_detector(
    model: nn.Module, output_path: str, clip_shape: Sequence[int], num_rois: int = 3, opset: int = 17
) -> str:
    """Trace ``model.forward_tensors`` at ``clip_shape`` (B, 3, T, H, W) and write ``output_path``.

    Uses the TorchScript-based exporter (``dynamo=False``): it needs no extra package and exports
    torchvision's RoIAlign natively.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} < {MIN_OPSET}: ONNX RoiAlign has no half_pixel (aligned=True) mode before 16")
    check_finite_model(model)
    wrapper = TensorPath(model).eval().cpu()
    clip, rois = example_inputs(clip_shape, num_rois)
    with torch.no_grad(), warnings.catch_warnings():
        # The legacy exporter warns about its deprecation and about Python-side shape checks it
        # freezes; both are expected here (shapes other than B and K are fixed on purpose).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (clip, rois),
            output_path,
            opset_version=opset,
            dynamo=False,
            input_names=["clip", "rois"],
            output_names=["scores"],
            dynamic_axes={"clip": {0: "batch"}, "rois": {0: "num_rois"}, "scores": {0: "num_rois"}},
        )
    import onnx

    onnx.checker.check_model(onnx.load(output_path))
    logger.info("exported %s (opset %d, clip %s)", output_path, opset, tuple(clip_shape))
    return output_path


def run_onnx(
    path: str, clip: torch.Tensor, rois: torch.Tensor, providers: Optional[Sequence[str]] = None
) -> np.ndarray:
    """Scores ``[K, C]`` from onnxruntime for ``clip``/``rois``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=list(providers or ["CPUExecutionProvider"]))
    return session.run(["scores"], {"clip": clip.float().numpy(), "rois": rois.float().numpy()})[0]


def compare_with_pytorch(model: nn.Module, path: str, clip: torch.Tensor, rois: torch.Tensor) -> float:
    """Max absolute difference between onnxruntime's and PyTorch's scores on the same inputs.

    Raises :class:`ExportCheckError` when either side gives NaN/inf scores (NaN would compare as "no
    difference" and pass any tolerance) or the shapes differ.
    """
    with torch.no_grad():
        expected = model.eval().cpu().forward_tensors(clip, rois).numpy()
    got = run_onnx(path, clip, rois)
    if got.shape != expected.shape:
        raise ExportCheckError(f"{path}: ONNX scores shape {got.shape} != PyTorch {expected.shape}")
    for name, scores in (("PyTorch", expected), ("onnxruntime", got)):
        bad = int((~np.isfinite(scores)).sum())
        if bad:
            raise ExportCheckError(
                f"{path}: {name} gives {bad} NaN/inf score(s) of {scores.size} for "
                f"{_where(model)} on the check inputs; the export is unusable"
            )
    return float(np.abs(got - expected).max())
