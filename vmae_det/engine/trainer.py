"""The training step used by every vmae_det job: detectron2's SimpleTrainer plus AMP, grad clipping
and gradient accumulation.

detectron2 v0.6's ``AMPTrainer`` insists on CUDA and float16 and has no gradient clipping; VideoMAE
recipes want clipping (fine-tuning) and bfloat16 is the better AMP type on current GPUs. Gradient
accumulation lets the paper's batch (e.g. 128 clips) run on fewer GPUs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Dict, Optional

import torch
from detectron2.engine import SimpleTrainer
from torch.nn.parallel import DistributedDataParallel

__all__ = ["Trainer"]


class _ExpectedErrorTraceback(logging.Filter):
    """detectron2's train loop logs every exception with its traceback before re-raising it. For an
    expected error (a bad file or value: ``vmae_det.cli.EXPECTED_ERRORS``) the tool prints one clear
    ``error: ...`` line instead, so the traceback is dropped here (``VMAE_DET_TRACEBACK=1`` keeps it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from ..cli import EXPECTED_ERRORS

        if (
            record.exc_info
            and isinstance(record.exc_info[1], EXPECTED_ERRORS)
            and not os.environ.get("VMAE_DET_TRACEBACK")
        ):
            record.msg = f"{record.getMessage()} {type(record.exc_info[1]).__name__} (details below)"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


logging.getLogger("detectron2.engine.train_loop").addFilter(_ExpectedErrorTraceback())


class Trainer(SimpleTrainer):
    """One optimisation step: forward under autocast, backward (scaled for float16),
    optional grad-norm clipping, optimizer step. The LR schedule is a hook.

    With ``grad_accum_steps = N`` one step (one ``run_step``, one iteration) draws N micro-batches
    from the data loader and backpropagates each loss divided by N, so the summed gradient is that of
    the mean loss over the N micro-batches (the full batch's, for mean-reduced losses over equal-sized
    micro-batches). Clipping then applies to the accumulated gradient, and the optimizer steps once.
    The iteration counter, LR schedule and checkpoints all count optimizer steps.
    """

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
        grad_accum_steps: int = 1,
    ):
        if isinstance(grad_accum_steps, bool) or not isinstance(grad_accum_steps, int) or grad_accum_steps < 1:
            raise ValueError(
                f"grad_accum_steps must be an integer >= 1 (micro-batches per optimizer step), got {grad_accum_steps!r}"
            )
        super().__init__(model, data_loader, optimizer)
        # The data-loader iterator is created here, as detectron2 v0.6's SimpleTrainer does
        # (``self._data_loader_iter = iter(data_loader)``). Upstream HEAD makes ``_data_loader_iter`` a
        # property that calls ``iter()`` on first use, in the first run_step after the hooks' before_train:
        # a DataLoader draws its workers' base seed from the global torch RNG in ``iter()``, so that later
        # draw gave other data and other numbers (the quick start's frame-mAP: 0.588 on HEAD, 0.542 on
        # v0.6; 0.542 on both with this line). Reading the attribute creates it now on HEAD; no-op on v0.6.
        self._data_loader_iter  # noqa: B018
        self.grad_accum_steps = grad_accum_steps
        self.amp = amp
        self.amp_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[amp_dtype]
        self.clip_grad = clip_grad
        self.device_type = device_type
        # A GradScaler only matters for float16 on CUDA (bfloat16 has float32's range).
        use_scaler = amp and self.amp_dtype is torch.float16 and device_type == "cuda"
        self.grad_scaler: Optional[torch.amp.GradScaler] = torch.amp.GradScaler("cuda") if use_scaler else None
        self.last_grad_norm: Optional[float] = None

    def _no_sync(self, sync: bool):
        """Under DDP, skip the gradient all-reduce for micro-batches that are not the last of a step.

        Only an optimisation: DDP all-reduces the accumulated gradient at the next synced backward."""
        if sync or not isinstance(self.model, DistributedDataParallel):
            return contextlib.nullcontext()
        return self.model.no_sync()

    def run_step(self):
        assert self.model.training, "[Trainer] model was changed to eval mode!"
        n = self.grad_accum_steps
        self.optimizer.zero_grad(set_to_none=True)
        data_time = 0.0
        loss_sums: Dict[str, torch.Tensor] = {}
        for micro in range(n):
            start = time.perf_counter()
            data = next(self._data_loader_iter)
            data_time += time.perf_counter() - start

            with self._no_sync(sync=micro == n - 1):
                with torch.autocast(self.device_type, dtype=self.amp_dtype, enabled=self.amp):
                    loss_dict = self.model(data)
                if isinstance(loss_dict, torch.Tensor):
                    loss_dict = {"total_loss": loss_dict}
                losses = sum(loss_dict.values())
                if n > 1:
                    losses = losses / n
                if self.grad_scaler is not None:
                    self.grad_scaler.scale(losses).backward()
                else:
                    losses.backward()
            for k, v in loss_dict.items():
                v = v.detach().to(torch.promote_types(v.dtype, torch.float32))  # no bf16/fp16 sums
                loss_sums[k] = loss_sums[k] + v if k in loss_sums else v

        if self.grad_scaler is not None:
            self.grad_scaler.unscale_(self.optimizer)  # once, on the accumulated gradient
        if self.clip_grad > 0:
            params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            self.last_grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.clip_grad))

        # Unscaled losses averaged over the micro-batches (the full batch's loss); data time summed.
        metrics = loss_dict if n == 1 else {k: v / n for k, v in loss_sums.items()}
        self._write_metrics(metrics, data_time)
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
