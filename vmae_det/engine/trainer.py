"""The training step used by every vmae_det job: detectron2's SimpleTrainer plus AMP and grad clipping.

detectron2 v0.6's ``AMPTrainer`` insists on CUDA and float16 and has no gradient clipping; VideoMAE
recipes want clipping (fine-tuning) and bfloat16 is the better AMP type on current GPUs.
"""
from __future__ import annotations

import time
from typing import Optional

import torch

from detectron2.engine import SimpleTrainer

__all__ = ["Trainer"]


class Trainer(SimpleTrainer):
    """One optimisation step: forward under autocast, backward (scaled for float16),
    optional grad-norm clipping, optimizer step. The LR schedule is a hook."""

    def __init__(
        self,
        model,
        data_loader,
        optimizer,
        *,
        amp: bool = False,
        amp_dtype: str = "bfloat16",
        clip_grad: float = 0.0,
        device_type: str = "cpu",
    ):
        super().__init__(model, data_loader, optimizer)
        self.amp = amp
        self.amp_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[amp_dtype]
        self.clip_grad = clip_grad
        self.device_type = device_type
        # A GradScaler only matters for float16 on CUDA (bfloat16 has float32's range).
        use_scaler = amp and self.amp_dtype is torch.float16 and device_type == "cuda"
        self.grad_scaler: Optional[torch.amp.GradScaler] = torch.amp.GradScaler("cuda") if use_scaler else None
        self.last_grad_norm: Optional[float] = None

    def run_step(self):
        assert self.model.training, "[Trainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        with torch.autocast(self.device_type, dtype=self.amp_dtype, enabled=self.amp):
            loss_dict = self.model(data)
        if isinstance(loss_dict, torch.Tensor):
            loss_dict = {"total_loss": loss_dict}
        losses = sum(loss_dict.values())

        self.optimizer.zero_grad(set_to_none=True)
        if self.grad_scaler is not None:
            self.grad_scaler.scale(losses).backward()
            self.grad_scaler.unscale_(self.optimizer)
        else:
            losses.backward()
        if self.clip_grad > 0:
            params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            self.last_grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.clip_grad))

        self._write_metrics(loss_dict, data_time)
        if self.grad_scaler is not None:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            self.optimizer.step()

    def state_dict(self):
        ret = super().state_dict()
        if self.grad_scaler is not None:
            ret["grad_scaler"] = self.grad_scaler.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if self.grad_scaler is not None and "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
