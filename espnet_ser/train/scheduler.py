"""``warmuplinearlr``: linear warm-up over ``round(warmup_ratio * N)`` updates, then linear decay
to 0 at update ``N`` (``scheduler_conf.total_steps``, or the run's count ``ToolkitTrainer`` gives)."""

import logging
import math
from typing import Optional

import torch
from espnet2.schedulers.abs_scheduler import AbsBatchStepScheduler
from torch.optim.lr_scheduler import LRScheduler
from typeguard import typechecked

SCHEDULER_NAME = "warmuplinearlr"


class ScheduleLengthError(RuntimeError):
    """A ``warmuplinearlr`` schedule has no usable number of updates."""


def updates_per_epoch(iter_factory, accum_grad: int) -> int:
    """``B // accum_grad`` optimizer steps per epoch (per process: every rank sees all ``B``
    sliced mini-batches); :class:`ScheduleLengthError` when ``B`` is not known in advance."""
    from espnet2.iterators.category_iter_factory import CategoryIterFactory
    from espnet2.iterators.sequence_iter_factory import SequenceIterFactory

    if accum_grad < 1:
        raise ValueError(f"accum_grad must be >= 1, got {accum_grad}")
    if isinstance(iter_factory, (SequenceIterFactory, CategoryIterFactory)) \
            and iter_factory.num_iters_per_epoch is not None:
        batches = int(iter_factory.num_iters_per_epoch)
    elif isinstance(iter_factory, SequenceIterFactory):
        batches = len(iter_factory.sampler)
    else:
        raise ScheduleLengthError(
            f"{SCHEDULER_NAME}: the number of updates per epoch of a {type(iter_factory).__name__} "
            "is not known in advance; set --num_iters_per_epoch, or give scheduler_conf.total_steps")
    return batches // accum_grad


class WarmupLinearLR(LRScheduler, AbsBatchStepScheduler):
    """Linear warm-up over ``warmup_ratio`` of the run, then linear decay to 0 at its end;
    the optimizer's ``lr`` is the peak, ``total_steps`` None: the run's own length."""

    @typechecked
    def __init__(self, optimizer: torch.optim.Optimizer, warmup_ratio: float = 0.1,
                 total_steps: Optional[int] = None, last_epoch: int = -1):
        self.warmup_ratio = float(warmup_ratio)
        if not 0.0 <= self.warmup_ratio < 1.0:  # also refuses NaN
            raise ValueError(
                f"scheduler_conf.warmup_ratio must be in [0, 1) (a fraction of the run's "
                f"updates), got {warmup_ratio}")
        if total_steps is not None and total_steps < 1:
            raise ValueError(
                f"scheduler_conf.total_steps must be >= 1 (updates), got {total_steps}")
        self.total_steps = total_steps
        self.run_updates: Optional[int] = None  # the run's own count (set_run_length)
        self.run_description = ""
        self.total: Optional[int] = None
        self.warmup: Optional[int] = None
        if total_steps is not None:
            self._set_total(total_steps)
        super().__init__(optimizer, last_epoch)

    def __repr__(self):
        return (f"{self.__class__.__name__}(warmup_ratio={self.warmup_ratio}, "
                f"total_steps={self.total_steps}, total={self.total}, warmup={self.warmup})")

    def _set_total(self, total: int) -> None:
        warmup = int(math.floor(self.warmup_ratio * total + 0.5))  # round(), halves up
        if warmup >= total:
            raise ValueError(
                f"scheduler_conf.warmup_ratio {self.warmup_ratio} makes a warm-up of {warmup} "
                f"of the {total} updates, leaving none to decay to 0; lower warmup_ratio")
        self.total, self.warmup = int(total), warmup

    def set_run_length(self, updates_per_epoch: Optional[int], max_epoch: int) -> str:
        """Give the schedule the run's length (None only with ``total_steps``); return its line."""
        if updates_per_epoch is None:
            if self.total_steps is None:
                raise ScheduleLengthError(
                    f"{SCHEDULER_NAME}: the run's number of updates is unknown; "
                    "give scheduler_conf.total_steps")
            run = "the run's own count is not known"
        else:
            self.run_updates = int(updates_per_epoch) * int(max_epoch)
            if self.total_steps is None and self.run_updates < 1:
                raise ScheduleLengthError(
                    f"{SCHEDULER_NAME}: the run makes no update ({updates_per_epoch} per epoch x "
                    f"{max_epoch} epochs): fewer mini-batches per epoch than accum_grad?")
            run = f"{updates_per_epoch} per epoch x {max_epoch} epochs"
        if self.total_steps is None:
            self._set_total(self.run_updates)
        else:
            this_run = "" if self.run_updates is None else f" = {self.run_updates}"
            run = f"scheduler_conf.total_steps; this run: {run}{this_run}"
        self.run_description = f"{self.total} updates ({run}), warm-up {self.warmup}"
        self._apply()
        return f"{SCHEDULER_NAME}: {self.run_description}"

    def _apply(self) -> None:
        for group, lr in zip(self.optimizer.param_groups, self._lrs()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _lrs(self):
        update = self.last_epoch + 1  # 1-based
        if update <= self.warmup:
            factor = update / self.warmup
        else:  # 0 from update total on
            factor = max(0.0, (self.total - update) / (self.total - self.warmup))
        return [base * factor for base in self.base_lrs]

    def get_lr(self):
        if self.total is None:
            if self._is_initial:  # built by ESPnet before the run's length is known
                return [0.0 for _ in self.base_lrs]
            raise ScheduleLengthError(
                f"{SCHEDULER_NAME}: stepped before it was given the run's number of updates; "
                "train with espnet_ser's trainer (ToolkitTrainer, the trainer of SERTask and "
                "ASRSERTask) or give scheduler_conf.total_steps")
        return self._lrs()

    def load_state_dict(self, state):
        """Restore a saved schedule; its length wins over this run's (the lr never rises)."""
        given = self.total
        super().load_state_dict(state)
        if given is not None and self.total is not None and given != self.total:
            logging.warning(
                f"{SCHEDULER_NAME}: resuming the saved schedule of {self.total} updates "
                f"(this run's settings give {given}); the learning rate stays 0 after update "
                f"{self.total}")
        elif self.total is None and given is not None:
            self._set_total(given)


def register_schedulers() -> None:
    """Add ``warmuplinearlr`` to ESPnet's scheduler registry (``--scheduler``)."""
    from espnet2.tasks import abs_task

    registered = abs_task.scheduler_classes.setdefault(SCHEDULER_NAME, WarmupLinearLR)
    if registered is not WarmupLinearLR:
        raise RuntimeError(
            f"ESPnet already has a scheduler named {SCHEDULER_NAME}: {registered.__module__}."
            f"{registered.__qualname__}")
