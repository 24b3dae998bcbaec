"""``warmuplinearlr``: linear warm-up, then linear decay to zero at the run's last update.

``scheduler_conf``: ``warmup_ratio`` (fraction of the updates spent warming up, in [0, 1))
and optionally ``total_steps`` (a fixed length). With ``N`` updates and
``W = round(warmup_ratio * N)``, update ``k`` runs at ``peak * k / W`` for ``k <= W``, then
``peak * (N - k) / (N - W)``, 0 from update ``N`` on. Without ``total_steps``, ``N`` is the
run's own count, given by :class:`espnet_ser.train.trainer.ToolkitTrainer` through
:meth:`WarmupLinearLR.set_run_length` before the first update (ESPnet builds schedulers
before the data iterators).
"""

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


def _check_ratio(warmup_ratio) -> float:
    ratio = float(warmup_ratio)
    if not 0.0 <= ratio < 1.0:  # also refuses NaN
        raise ValueError(
            f"scheduler_conf.warmup_ratio must be in [0, 1) (a fraction of the run's updates), "
            f"got {warmup_ratio}")
    return ratio


def warmup_updates(warmup_ratio: float, total: int) -> int:
    """``round(warmup_ratio * total)``, halves rounded up."""
    return int(math.floor(_check_ratio(warmup_ratio) * total + 0.5))


def linear_schedule_factor(update: int, warmup: int, total: int) -> float:
    """Fraction of the peak learning rate at ``update`` (1-based) of a ``total``-update run."""
    if update <= warmup:
        return update / warmup
    if update >= total:
        return 0.0
    return (total - update) / (total - warmup)


def updates_per_epoch(iter_factory, accum_grad: int) -> int:
    """Optimizer steps ESPnet's trainer makes in one epoch of ``iter_factory`` (per process).

    ``B // accum_grad`` for ``B`` mini-batches (``--num_iters_per_epoch`` when set, else the
    batch sampler's length); every rank iterates over all ``B`` (sliced) mini-batches, so the
    count is not divided by the number of processes. :class:`ScheduleLengthError` when
    ``B`` is not fixed in advance (chunk / multiple iterators, category samplers without
    ``--num_iters_per_epoch``, other factories).
    """
    from espnet2.iterators.category_iter_factory import CategoryIterFactory
    from espnet2.iterators.sequence_iter_factory import SequenceIterFactory

    if accum_grad < 1:
        raise ValueError(f"accum_grad must be >= 1, got {accum_grad}")
    kind = type(iter_factory).__name__
    if isinstance(iter_factory, (SequenceIterFactory, CategoryIterFactory)) \
            and iter_factory.num_iters_per_epoch is not None:
        batches = int(iter_factory.num_iters_per_epoch)
    elif isinstance(iter_factory, SequenceIterFactory):
        batches = len(iter_factory.sampler)
    else:
        raise ScheduleLengthError(
            f"{SCHEDULER_NAME}: the number of updates per epoch of a {kind} is not known in "
            "advance; set --num_iters_per_epoch, or give scheduler_conf.total_steps")
    return batches // accum_grad


class WarmupLinearLR(LRScheduler, AbsBatchStepScheduler):
    """Linear warm-up over ``warmup_ratio`` of the run, then linear decay to 0 at its end.

    Args:
        optimizer: the optimizer; its ``lr`` is the peak learning rate.
        warmup_ratio: fraction of the updates spent warming up, in [0, 1).
        total_steps: the schedule's number of updates; None (default): the run's own,
            given by the trainer through :meth:`set_run_length`.
        last_epoch: the index of the last update (-1: a new run), as in torch's schedulers.
    """

    @typechecked
    def __init__(self, optimizer: torch.optim.Optimizer, warmup_ratio: float = 0.1,
                 total_steps: Optional[int] = None, last_epoch: int = -1):
        self.warmup_ratio = _check_ratio(warmup_ratio)
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
        warmup = warmup_updates(self.warmup_ratio, total)
        if warmup >= total:
            raise ValueError(
                f"scheduler_conf.warmup_ratio {self.warmup_ratio} makes a warm-up of {warmup} "
                f"of the {total} updates, leaving none to decay to 0; lower warmup_ratio")
        self.total, self.warmup = int(total), warmup

    def set_run_length(self, updates_per_epoch: Optional[int], max_epoch: int) -> str:
        """Give the schedule the run's length; return the line describing it.
        ``updates_per_epoch`` may be None only with an explicit ``total_steps``."""
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
            self.run_description = f"{self.total} updates ({run}), warm-up {self.warmup}"
        else:
            this_run = "" if self.run_updates is None else f" = {self.run_updates}"
            self.run_description = (
                f"{self.total} updates (scheduler_conf.total_steps; this run: {run}{this_run}), "
                f"warm-up {self.warmup}")
        self._apply()
        return f"{SCHEDULER_NAME}: {self.run_description}"

    def _apply(self) -> None:
        """Set the optimizer's learning rates for the coming update."""
        for group, lr in zip(self.optimizer.param_groups, self._lrs()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _lrs(self):
        factor = linear_schedule_factor(self.last_epoch + 1, self.warmup, self.total)
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
