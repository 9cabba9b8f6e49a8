"""The training step of every vmae_det job: detectron2's SimpleTrainer plus AMP, grad clipping and gradient
accumulation (v0.6's ``AMPTrainer`` insists on CUDA and float16 and cannot clip)."""

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
    """Drop the traceback detectron2's train loop logs for an expected error, which the tool prints as one
    ``error: ...`` line (``VMAE_DET_TRACEBACK=1`` keeps it)."""

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


def _cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has bf16 kernels for this CPU (AVX-512 or newer; AVX512-BF16/AMX run them natively)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class Trainer(SimpleTrainer):
    """One optimisation step: forward under autocast, backward, optional grad-norm clipping, optimizer step.

    Args:
        grad_accum_steps: micro-batches per step, each loss divided by it, so iterations, the LR schedule and
            checkpoints count optimizer steps.
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
        # Create the iterator now, as v0.6 does: upstream HEAD creates it lazily after the hooks' before_train,
        # and ``iter()`` draws the workers' seed from the global RNG, which would change the data (docs/install.md).
        self._data_loader_iter  # noqa: B018
        self.grad_accum_steps = grad_accum_steps
        self.amp = amp
        self.amp_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[amp_dtype]
        self.clip_grad = clip_grad
        self.device_type = device_type
        if amp and self.amp_dtype is torch.bfloat16 and device_type == "cpu" and not _cpu_has_fast_bf16():
            logging.getLogger(__name__).warning(
                "train.amp: this CPU has no oneDNN bf16 kernels (AVX-512 or newer); bf16 is likely slower than fp32"
            )
        # A GradScaler only matters for float16 on CUDA (bfloat16 has float32's range).
        use_scaler = amp and self.amp_dtype is torch.float16 and device_type == "cuda"
        self.grad_scaler: Optional[torch.amp.GradScaler] = torch.amp.GradScaler("cuda") if use_scaler else None
        self.last_grad_norm: Optional[float] = None

    def _no_sync(self, sync: bool):
        """Under DDP, skip the all-reduce for micro-batches before a step's last (an optimisation only)."""
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
