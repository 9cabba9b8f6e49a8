"""Action detector: VideoMAE ViT features, RoIAlign over person boxes, linear head; multi-label (sigmoid, AVA) or
single-label (softmax: UCF101-24, JHMDB-21, MultiSports).

Mirrors the official VideoMAE AVA detector (VMAD, ``modeling_finetune.py`` ``VisionTransformer.forward``) with its
defaults; ``tests/modeling/test_vmad_parity.py`` checks the probabilities against VMAD's code on the same weights.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import ROIAlign
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from torch import nn

from ..constants import IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD
from .vit import VideoViT
from .vmad_boxes import extend_boxes

__all__ = ["AVAActionDetector", "ActionHead", "LOSSES", "LOSS_REDUCTIONS", "NonFiniteScoresError"]

LOSS_REDUCTIONS = ("mean", "box_sum")
LOSSES = ("sigmoid_bce", "softmax_ce")

IMAGENET_MEAN, IMAGENET_STD = IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD  # the default normalisation


class NonFiniteScoresError(ValueError):
    """NaN/inf person boxes at inference, or NaN/inf probabilities (broken weights): never written out as scores."""


class ActionHead(nn.Module):
    """RoI features [K, C] → action logits [K, num_classes]: linear (official) or a small MLP."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        *,
        kind: str = "linear",
        hidden_dim: int = 1024,
        dropout: float = 0.0,
        init_std: float = 0.02,
        init_scale: float = 0.001,
    ):
        super().__init__()
        if kind not in ("linear", "mlp"):
            raise ValueError(f"head kind must be 'linear' or 'mlp', got {kind!r}")
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        layers: List[nn.Module] = []
        if kind == "mlp":
            layers += [nn.Linear(in_dim, hidden_dim), nn.GELU()]
            in_dim = hidden_dim
        self.fc = nn.Linear(in_dim, num_classes)
        self.hidden = nn.Sequential(*layers)
        self.num_classes = num_classes
        # VMAD: trunc_normal_(std=0.02) then weight and bias × init_scale (0.001): logits start near 0.
        nn.init.trunc_normal_(self.fc.weight, std=init_std)
        nn.init.zeros_(self.fc.bias)
        with torch.no_grad():
            self.fc.weight.mul_(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden(self.dropout(x)))


@META_ARCH_REGISTRY.register()
class AVAActionDetector(nn.Module):
    """Spatio-temporal action detector for AVA-style multi-label person actions.

    Inputs: ``list[dict]`` with ``clip`` (uint8 [3, T, H, W]), ``boxes`` ([N, 4] xyxy in clip pixels), ``labels``
    ([N, C] multi-hot, or one-hot for ``loss="softmax_ce"``; training), ``box_scores`` ([N]). Training returns
    ``{"loss_action": ...}``; inference per input ``{"boxes": [N, 4] normalised to [0, 1], "scores": [N, C]}``.
    """

    #: The checkpoint the weights came from, named by :class:`NonFiniteScoresError`.
    weights_source: Optional[str] = None

    @configurable
    def __init__(
        self,
        *,
        backbone: VideoViT,
        num_classes: int = 80,
        temporal_pool: str = "mean",
        roi_size: int = 7,
        roi_sampling_ratio: int = 0,
        roi_aligned: bool = False,
        test_box_extension: Optional[Sequence[float]] = (0.1, 0.05),
        spatial_pool: str = "max",
        head: str = "linear",
        head_hidden_dim: int = 1024,
        dropout: float = 0.0,
        head_init_std: float = 0.02,
        head_init_scale: float = 0.001,
        loss: str = "sigmoid_bce",
        loss_reduction: str = "box_sum",
        multiply_box_scores: bool = True,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
    ):
        """
        Args:
            num_classes: head outputs (80 for AVA; evaluation keeps the label map's 60).
            test_box_extension: ``(sx, sy)`` enlargement of test boxes for RoIAlign, in inclusive-pixel widths
                and clamped to each clip (VMAD's ``BoxList.extend``); ``None`` disables.
            head: ``"linear"`` (VMAD) or ``"mlp"``.
            loss: ``"sigmoid_bce"`` (multi-label, VMAD) or ``"softmax_ce"`` (single-label: cross-entropy against
                the label rows normalised to sum 1, rows without a label left out, softmax probabilities at test,
                as mmaction2's ``BBoxHeadAVA(multilabel=False)``).
            loss_reduction: ``"box_sum"`` (VMAD: BCE mean times the number of boxes in the batch) or ``"mean"``.
            multiply_box_scores: test score = sigmoid x person score (VMAD), reported on the original boxes.
        """
        super().__init__()
        if temporal_pool not in ("mean", "max"):
            raise ValueError(f"temporal_pool must be 'mean' or 'max', got {temporal_pool!r}")
        if spatial_pool not in ("mean", "max"):
            raise ValueError(f"spatial_pool must be 'mean' or 'max', got {spatial_pool!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(f"loss_reduction must be one of {LOSS_REDUCTIONS}, got {loss_reduction!r}")
        if test_box_extension is not None:
            test_box_extension = tuple(float(v) for v in test_box_extension)
            if len(test_box_extension) not in (1, 2) or min(test_box_extension) < 0:
                raise ValueError(f"test_box_extension must be (sx, sy) >= 0 or None, got {test_box_extension}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.temporal_pool = temporal_pool
        self.spatial_pool = spatial_pool
        self.test_box_extension = test_box_extension
        self.loss = loss
        self.loss_reduction = loss_reduction
        self.multiply_box_scores = multiply_box_scores
        stride = backbone.output_shape()[backbone.out_feature].stride
        self.roi_align = ROIAlign((roi_size, roi_size), 1.0 / stride, roi_sampling_ratio, aligned=roi_aligned)
        self.head = ActionHead(
            backbone.embed_dim,
            num_classes,
            kind=head,
            hidden_dim=head_hidden_dim,
            dropout=dropout,
            init_std=head_init_std,
            init_scale=head_init_scale,
        )
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(1, 3, 1, 1, 1), persistent=False)

    @classmethod
    def from_config(cls, cfg) -> dict:
        """Arguments from a yacs config: ``build_backbone(cfg)`` and ``cfg.MODEL.AVA_HEAD.*`` (``()`` for
        ``test_box_extension`` means None)."""
        if "AVA_HEAD" not in cfg.MODEL:
            raise KeyError(
                "cfg.MODEL.AVA_HEAD is missing: call vmae_det.modeling.yacs_config.add_ava_detector_config(cfg) "
                "before merging the config file"
            )
        backbone = build_backbone(cfg)
        if not isinstance(backbone, VideoViT):
            raise ValueError(
                f"AVAActionDetector needs a VideoViT backbone; cfg.MODEL.BACKBONE.NAME="
                f"{cfg.MODEL.BACKBONE.NAME!r} built a {type(backbone).__name__}"
            )
        h = cfg.MODEL.AVA_HEAD
        return dict(
            backbone=backbone,
            num_classes=h.NUM_CLASSES,
            temporal_pool=h.TEMPORAL_POOL,
            roi_size=h.ROI_SIZE,
            roi_sampling_ratio=h.ROI_SAMPLING_RATIO,
            roi_aligned=h.ROI_ALIGNED,
            test_box_extension=tuple(h.TEST_BOX_EXTENSION) or None,
            spatial_pool=h.SPATIAL_POOL,
            head=h.KIND,
            head_hidden_dim=h.HIDDEN_DIM,
            dropout=h.DROPOUT,
            head_init_std=h.INIT_STD,
            head_init_scale=h.INIT_SCALE,
            loss=h.LOSS,
            loss_reduction=h.LOSS_REDUCTION,
            multiply_box_scores=h.MULTIPLY_BOX_SCORES,
            pixel_mean=list(cfg.MODEL.PIXEL_MEAN),
            pixel_std=list(cfg.MODEL.PIXEL_STD),
        )

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def forward_tensors(self, clip: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """``clip`` [B, 3, T, H, W] in 0-255 (sides multiples of the patch size), ``rois`` [K, 5] (batch index,
        xyxy clip pixels) -> action probabilities [K, C], not multiplied by the person score."""
        return self.probabilities(self.forward_logits(clip, rois))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits [K, C] -> probabilities: sigmoid per class, or softmax over the classes (``softmax_ce``)."""
        return logits.softmax(-1) if self.loss == "softmax_ce" else torch.sigmoid(logits)

    def forward_logits(self, clip: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled_features(clip, rois))

    def pooled_features(self, clip: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """The head's input [K, C]: ViT, temporal pool, RoIAlign, spatial pool."""
        x = (clip.float() - self.pixel_mean) / self.pixel_std
        fmap = self.backbone(x)[self.backbone.out_feature]  # [B, C, T', H', W']
        fmap = fmap.mean(2) if self.temporal_pool == "mean" else fmap.amax(2)
        roi_feats = self.roi_align(fmap, rois.to(fmap.dtype))  # [K, C, s, s]
        return roi_feats.amax((2, 3)) if self.spatial_pool == "max" else roi_feats.mean((2, 3))

    def _batch_clips(self, batched_inputs: List[Dict]) -> torch.Tensor:
        """Stack clips, padded bottom/right with the mean colour to a multiple of the patch size."""
        clips = [d["clip"] for d in batched_inputs]
        div = self.backbone.size_divisibility
        t = clips[0].shape[1]
        if any(c.shape[1] != t for c in clips):
            raise ValueError(f"all clips in a batch need the same number of frames, got {[c.shape[1] for c in clips]}")
        h = max(c.shape[2] for c in clips)
        w = max(c.shape[3] for c in clips)
        h, w = -(-h // div) * div, -(-w // div) * div
        out = self.pixel_mean.new_empty(len(clips), 3, t, h, w)
        out[:] = self.pixel_mean  # padding becomes 0 after normalisation
        for i, c in enumerate(clips):
            out[i, :, :, : c.shape[2], : c.shape[3]] = c.to(self.device, non_blocking=True).float()
        return out

    def _rois(self, batched_inputs: List[Dict], extend: bool = False) -> torch.Tensor:
        """``[K, 5]`` (batch index, x1, y1, x2, y2) in clip pixels; with ``extend`` the test-time
        enlargement, clamped to each clip's own (unpadded) size as VMAD's ``BoxList`` does."""
        rois = []
        for i, d in enumerate(batched_inputs):
            boxes = torch.as_tensor(d["boxes"], dtype=torch.float32, device=self.device).reshape(-1, 4)
            if extend and self.test_box_extension is not None and len(boxes):
                h, w = d.get("clip_size", d["clip"].shape[-2:])
                boxes = extend_boxes(boxes, self.test_box_extension, int(h), int(w))
            rois.append(torch.cat([boxes.new_full((len(boxes), 1), float(i)), boxes], dim=1))
        return torch.cat(rois, 0)

    def forward(self, batched_inputs: List[Dict]):
        clip = self._batch_clips(batched_inputs)
        counts = [len(d["boxes"]) for d in batched_inputs]
        if self.training:
            rois = self._rois(batched_inputs)
            labels = torch.cat(
                [
                    torch.as_tensor(d["labels"], dtype=torch.float32).reshape(-1, self.num_classes)
                    for d in batched_inputs
                ]
            ).to(self.device)
            if len(rois) == 0:
                # Keep the graph connected so DDP/AMP see every parameter.
                return {"loss_action": sum(p.sum() for p in self.parameters()) * 0.0}
            logits = self.forward_logits(clip, rois).float()
            if self.loss == "softmax_ce":
                return {"loss_action": self._softmax_ce(logits, labels)}
            loss = F.binary_cross_entropy_with_logits(logits, labels)
            if self.loss_reduction == "box_sum":
                loss = loss * len(rois)  # VMAD's train_class_batch: mean × batch boxes
            return {"loss_action": loss}
        return self.inference(batched_inputs, clip, self._rois(batched_inputs), counts)

    def _softmax_ce(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the boxes with a label; a box with two labels targets half of each (mmaction2)."""
        total = labels.sum(1)
        keep = total > 0
        if not bool(keep.any()):  # background proposals only: nothing to learn, graph kept connected
            return logits.sum() * 0.0
        loss = F.cross_entropy(logits[keep], labels[keep] / total[keep, None])
        return loss * int(keep.sum()) if self.loss_reduction == "box_sum" else loss

    @torch.no_grad()
    def roi_features(self, batched_inputs: List[Dict]) -> List[torch.Tensor]:
        """The head's input of every box as inference computes it, ``[N_i, C]`` per input, for long-term models
        (LFB/LART-style); ``self.probabilities(self.head(f))`` x the person score is the box's inference score."""
        clip = self._batch_clips(batched_inputs)
        rois = self._rois(batched_inputs)
        feats, pooled_rois = self._test_features(batched_inputs, clip, rois)
        if not bool(torch.isfinite(feats).all()):
            self._refuse_non_finite(batched_inputs, feats, pooled_rois, "RoI features")
        return list(feats.split([len(d["boxes"]) for d in batched_inputs]))

    def _test_features(self, batched_inputs, clip, rois):
        """``(features [K, C], pooled rois)`` at test time (enlarged boxes), for both inference and features."""
        if not len(rois):
            return clip.new_zeros(0, self.backbone.embed_dim), rois
        if not bool(torch.isfinite(rois).all()):  # RoIAlign would fail obscurely or give NaN
            self._refuse_non_finite(batched_inputs, rois[:, 1:], rois, "person boxes")
        pooled_rois = self._rois(batched_inputs, extend=True)
        return self.pooled_features(clip, pooled_rois), pooled_rois

    @torch.no_grad()
    def inference(self, batched_inputs, clip, rois, counts) -> List[Dict[str, torch.Tensor]]:
        """Scores of the boxes ``rois``, pooled over the extended boxes, reported on the given ones."""
        if len(rois):
            feats, pooled_rois = self._test_features(batched_inputs, clip, rois)
            probs = self.probabilities(self.head(feats)).float()  # forward_tensors(clip, pooled_rois), spelled out
            if not bool(torch.isfinite(probs).all()):
                self._refuse_non_finite(batched_inputs, probs, pooled_rois, "action scores")
        else:
            probs = torch.zeros(0, self.num_classes, device=self.device)
        results = []
        for d, p, r in zip(batched_inputs, probs.split(counts), rois.split(counts)):
            h, w = d.get("clip_size", d["clip"].shape[-2:])
            boxes = r[:, 1:] / torch.tensor([w, h, w, h], dtype=torch.float32, device=r.device)
            if self.multiply_box_scores and "box_scores" in d:
                p = p * torch.as_tensor(d["box_scores"], dtype=torch.float32, device=p.device).reshape(-1, 1)
            results.append({"boxes": boxes.clamp(0, 1).cpu(), "scores": p.cpu()})
        return results

    def _refuse_non_finite(self, batched_inputs, values: torch.Tensor, rois: torch.Tensor, what: str) -> None:
        bad_rows = (~torch.isfinite(values)).any(1).nonzero().flatten().tolist()
        first = int(rois[bad_rows[0], 0])
        d = batched_inputs[first]
        where = " ".join(f"{k}={d[k]}" for k in ("video_id", "timestamp") if k in d) or f"input {first} of the batch"
        if what == "person boxes":
            cause = "the boxes given to the detector (ground truth or proposals) are broken"
        else:
            cause = "the weights are broken (NaN/inf or overflowing parameters)"
        source = f" loaded from {self.weights_source}" if self.weights_source else ""
        raise NonFiniteScoresError(
            f"{type(self).__name__}{source}: NaN/inf {what} for {len(bad_rows)} of {len(values)} boxes "
            f"(first: {where}): {cause}. Refusing to report scores for them."
        )
