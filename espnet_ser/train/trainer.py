"""``ASRSERTrainer``: ESPnet's trainer with crash-safe checkpoints and a non-finite limit.

It keeps :class:`espnet2.train.trainer.Trainer`'s loop and files and adds:

- **Atomic checkpoints.** ESPnet writes ``checkpoint.pth``, ``{epoch}epoch.pth`` and the
  averaged models with ``torch.save(obj, path)`` inline in ``Trainer.run`` and
  ``average_nbest_models``. While :meth:`ASRSERTrainer.run` is active, the name ``torch``
  in those two modules (and only there) refers to a stand-in whose ``save`` to a path goes
  through :func:`espnet_ser.utils.checkpoints.atomic_torch_save` (temporary file + rename);
  every other attribute is ``torch`` itself. The global ``torch.save`` is not touched.
  A killed run therefore leaves either the previous complete file or the new complete
  file under each name, never a truncated one.
- **Recovery on ``--resume true``.** Before resuming, temporary files left by a killed
  writer are removed, and the epoch file and ``latest.pth`` / ``*.best.pth`` links of the
  epoch recorded in ``checkpoint.pth`` are completed if the kill came between writing the
  checkpoint and writing them (the epoch file is rebuilt from the checkpoint's model).
- **Non-finite steps.** ESPnet already skips the optimizer step when the gradient norm is
  not finite (it logs ``The grad norm is nan. Skipping updating the model.`` and counts
  nothing). This trainer also poisons the gradients of a step whose loss is not finite
  (so a non-finite loss with finite gradients is skipped too), counts the skipped updates
  (a warning per skip, a per-epoch summary line, and the reporter key
  ``nonfinite_skipped``: the fraction of updates skipped in the epoch), and raises
  :class:`NonFiniteTrainingError` after ``--max_nonfinite_steps`` consecutive skipped
  updates (0: never).
- **Schedules of the run's length.** A ``warmuplinearlr`` scheduler
  (:class:`espnet_ser.train.scheduler.WarmupLinearLR`) is given the run's number of
  updates (:func:`espnet_ser.train.scheduler.updates_per_epoch` of the training iterator
  factory x ``max_epoch``) before the first update, and the line
  ``warmuplinearlr: N updates (U per epoch x E epochs), warm-up W`` is logged. A skipped
  (non-finite) update does not advance the schedule.

The skip detection uses only per-instance hooks: a forward hook on the model, a step
post-hook on each optimizer (``Optimizer.register_step_post_hook``) and a wrapper of each
optimizer's ``zero_grad``, which ESPnet calls once per update whether it stepped or not.
All are removed when the epoch ends.
"""

import argparse
import contextlib
import dataclasses
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch
import espnet2.main_funcs.average_nbest_models as _average_module
import espnet2.train.trainer as _trainer_module
from espnet2.train.reporter import SubReporter, aggregate
from espnet2.train.trainer import Trainer, TrainerOptions
from espnet2.utils.build_dataclass import build_dataclass

from espnet_ser.train.scheduler import ScheduleLengthError, WarmupLinearLR, updates_per_epoch
from espnet_ser.utils.checkpoints import atomic_symlink, atomic_torch_save

DEFAULT_MAX_NONFINITE_STEPS = 100

# Temporary names made by espnet_ser.utils.checkpoints (".<name>.<random>.tmp",
# ".<name>.<pid>.lnk") for files and links in an experiment directory.
_TEMPORARY_RE = re.compile(r"^\..+\.pth\.[^/]+\.(tmp|lnk)$")


class NonFiniteTrainingError(RuntimeError):
    """Too many consecutive updates had a non-finite loss or gradient."""


@dataclasses.dataclass
class ASRSERTrainerOptions(TrainerOptions):
    """ESPnet's trainer options plus ``max_nonfinite_steps``."""

    max_nonfinite_steps: int = DEFAULT_MAX_NONFINITE_STEPS


# --------------------------------------------------------------------------------------
# Atomic saves inside ESPnet's trainer
# --------------------------------------------------------------------------------------
class _AtomicSaveTorch:
    """Stand-in for the ``torch`` module: ``save(obj, path)`` is atomic, the rest is torch."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def save(self, obj, f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)) and not args and not kwargs:
            atomic_torch_save(obj, f)
        else:
            self._real.save(obj, f, *args, **kwargs)


# Modules whose checkpoint writes are routed to atomic_torch_save.
_SAVING_MODULES = (_trainer_module, _average_module)
_patch_lock = threading.Lock()
_patch_depth = 0
_patch_originals: Dict[Any, Any] = {}


@contextlib.contextmanager
def atomic_checkpoint_saves():
    """Make ``torch.save(obj, path)`` in ESPnet's trainer modules atomic (re-entrant)."""
    global _patch_depth
    with _patch_lock:
        if _patch_depth == 0:
            for module in _SAVING_MODULES:
                _patch_originals[module] = module.torch
                module.torch = _AtomicSaveTorch(module.torch)
        _patch_depth += 1
    try:
        yield
    finally:
        with _patch_lock:
            _patch_depth -= 1
            if _patch_depth == 0:
                for module in _SAVING_MODULES:
                    module.torch = _patch_originals.pop(module)


# --------------------------------------------------------------------------------------
# Recovery of an interrupted experiment directory
# --------------------------------------------------------------------------------------
def remove_stale_temporaries(output_dir: Path) -> List[Path]:
    """Delete temporary checkpoint files / links left by a killed writer."""
    removed = []
    if not output_dir.is_dir():
        return removed
    for p in output_dir.iterdir():
        if _TEMPORARY_RE.match(p.name) and (p.is_symlink() or p.is_file()):
            p.unlink()
            removed.append(p)
    if removed:
        logging.warning(
            "Removed temporary files of an interrupted write: "
            + ", ".join(p.name for p in removed)
        )
    return removed


def complete_interrupted_epoch(output_dir: Path, best_model_criterion) -> Optional[int]:
    """Write the epoch file and links of the epoch saved in ``checkpoint.pth`` if missing.

    ESPnet writes ``checkpoint.pth`` first, then ``{epoch}epoch.pth``, then the links; a
    kill in between would lose that epoch's model file for good. Returns the epoch of the
    checkpoint, or None if there is none.
    """
    from espnet2.train.reporter import Reporter

    ckpt = output_dir / "checkpoint.pth"
    if not ckpt.is_file():
        return None
    states = torch.load(ckpt, map_location="cpu", weights_only=False)
    reporter = Reporter()
    reporter.load_state_dict(states["reporter"])
    epoch = reporter.get_epoch()
    if epoch < 1:
        return epoch
    epoch_file = output_dir / f"{epoch}epoch.pth"
    if not epoch_file.is_file():
        logging.warning(f"{epoch_file.name} is missing; rebuilding it from {ckpt.name}")
        atomic_torch_save(states["model"], epoch_file)
    del states
    latest = output_dir / "latest.pth"
    if os.path.realpath(latest) != os.path.realpath(epoch_file):
        atomic_symlink(epoch_file, latest)
    for phase, key, mode in best_model_criterion:
        if not reporter.has(phase, key):
            continue
        best = output_dir / f"{reporter.get_best_epoch(phase, key, mode)}epoch.pth"
        link = output_dir / f"{phase}.{key}.best.pth"
        if best.is_file() and os.path.realpath(link) != os.path.realpath(best):
            atomic_symlink(best, link)
    return epoch


# --------------------------------------------------------------------------------------
# Non-finite steps
# --------------------------------------------------------------------------------------
def _poisoned(retval):
    """The model output with a NaN-gradient loss if its loss is not finite, else None."""
    loss = retval.get("loss") if isinstance(retval, dict) else retval[0]
    if not isinstance(loss, torch.Tensor) or bool(torch.isfinite(loss.detach()).all()):
        return None
    bad = loss * float("nan")  # every gradient of this loss is NaN
    if isinstance(retval, dict):
        return dict(retval, loss=bad)
    return type(retval)([bad, *retval[1:]]) if isinstance(retval, list) else (bad, *retval[1:])


class NonFiniteGuard:
    """Counts updates skipped because of a non-finite loss or gradient."""

    def __init__(self, max_consecutive: int = DEFAULT_MAX_NONFINITE_STEPS):
        if max_consecutive < 0:
            raise ValueError(f"max_nonfinite_steps must be >= 0, got {max_consecutive}")
        self.max_consecutive = max_consecutive
        self.consecutive = 0
        self.total = 0

    @contextlib.contextmanager
    def watch(self, model: torch.nn.Module, optimizers: Sequence[torch.optim.Optimizer],
              reporter):
        """Install the hooks for one epoch of ``Trainer.train_one_epoch``."""
        state = dict(pending=False, stepped=False, loss_bad=False, updates=0, skipped=0)

        def on_forward(module, args, retval):
            state["pending"] = True
            if model.training and torch.is_grad_enabled():
                poisoned = _poisoned(retval)
                if poisoned is not None:
                    state["loss_bad"] = True
                    return poisoned
            return None

        def on_step(optimizer, args, kwargs):
            state["stepped"] = True

        def end_of_update():
            if not state["pending"]:
                return
            skipped = not state["stepped"]
            what = "loss" if state["loss_bad"] else "gradient"
            state.update(pending=False, stepped=False, loss_bad=False)
            state["updates"] += 1
            reporter.register({"nonfinite_skipped": float(skipped)})
            if not skipped:
                self.consecutive = 0
                return
            self.consecutive += 1
            self.total += 1
            state["skipped"] += 1
            limit = self.max_consecutive
            logging.warning(
                f"Non-finite {what}: update skipped ({self.consecutive} consecutive, "
                f"{state['skipped']} in this epoch, {self.total} in total; limit "
                f"{limit if limit > 0 else 'none'})"
            )
            if 0 < limit <= self.consecutive:
                raise NonFiniteTrainingError(
                    f"{self.consecutive} consecutive updates had a non-finite loss or "
                    f"gradient (--max_nonfinite_steps {limit}); training stopped. The last "
                    f"complete checkpoint is kept; lower the learning rate, check the data "
                    f"or raise the limit (0: never stop)."
                )

        def wrap_zero_grad(original):
            def zero_grad(*args, **kwargs):
                end_of_update()
                return original(*args, **kwargs)

            return zero_grad

        handles = [model.register_forward_hook(on_forward)]
        patched = []
        try:
            for optimizer in optimizers:
                handles.append(optimizer.register_step_post_hook(on_step))
                optimizer.zero_grad = wrap_zero_grad(optimizer.zero_grad)
                patched.append(optimizer)
            yield
        finally:
            for h in handles:
                h.remove()
            for optimizer in patched:
                del optimizer.zero_grad  # back to the class method
        if state["skipped"]:
            logging.warning(
                f"{state['skipped']} of {state['updates']} updates in this epoch were "
                f"skipped because of a non-finite loss or gradient"
            )
        else:
            logging.info(f"0 of {state['updates']} updates skipped (non-finite)")


# --------------------------------------------------------------------------------------
# Unweighted accuracy over a whole validation epoch
# --------------------------------------------------------------------------------------
def pooled_ratio(reporter: SubReporter, numerator: str, denominator: str) -> Optional[float]:
    """Ratio of the epoch averages of two per-batch fractions: a ratio of totals.

    A model reports counts divided by its batch size; the reporter averages them over the
    epoch weighted by batch size, i.e. ``total / N``, so the ratio of two such averages is
    the ratio of the totals over the whole set (not a mean of per-batch ratios). None
    when either was not reported or the denominator's total is zero.
    """
    if numerator not in reporter.stats or denominator not in reporter.stats:
        return None
    total = aggregate(reporter.stats[denominator])
    if not total > 0:
        return None
    return float(aggregate(reporter.stats[numerator]) / total)


def unweighted_accuracy(reporter: SubReporter) -> Optional[float]:
    """Mean per-class recall from the epoch's ``cnt_<class>`` / ``hit_<class>`` stats.

    A model reports, per batch, the fraction of the batch in each class and the fraction
    correctly classified in it, weighted by the batch size; their epoch averages are
    ``count_c / N`` and ``correct_c / N``, whose ratio is the recall of class c
    (:func:`pooled_ratio`). Classes absent from the set are left out of the mean. None
    when no such stats were reported.
    """
    recalls = []
    for key in reporter.stats:
        if key.startswith("hit_"):
            recall = pooled_ratio(reporter, key, f"cnt_{key[4:]}")
            if recall is not None:
                recalls.append(recall)
    return float(sum(recalls) / len(recalls)) if recalls else None


def pooled_error_rates(reporter: SubReporter) -> Dict[str, float]:
    """``{name: errors / reference units}`` over the epoch from ``err_<name>`` / ``ref_<name>``.

    E.g. ``cer_ctc`` and ``wer_ctc`` of :meth:`espnet_ser.ser.espnet_model.ESPnetSERModel.
    ctc_error_stats`: the error rate over the whole validation set (:func:`pooled_ratio`),
    which an average of per-batch rates is not.
    """
    rates = {}
    for key in reporter.stats:
        if key.startswith("err_"):
            rate = pooled_ratio(reporter, key, f"ref_{key[4:]}")
            if rate is not None:
                rates[key[4:]] = rate
    return rates


# --------------------------------------------------------------------------------------
# Schedules stated as a fraction of the run
# --------------------------------------------------------------------------------------
def set_schedule_lengths(schedulers, train_iter_factory, trainer_options) -> List[str]:
    """Give every ``warmuplinearlr`` scheduler the run's number of updates; log and return it.

    The count is per process (see :func:`espnet_ser.train.scheduler.updates_per_epoch`).
    Raises :class:`espnet_ser.train.scheduler.ScheduleLengthError` when the iterator's
    length is not known in advance and the scheduler has no ``total_steps``.
    """
    lines = []
    for scheduler in schedulers:
        if not isinstance(scheduler, WarmupLinearLR):
            continue
        try:
            per_epoch = updates_per_epoch(train_iter_factory, trainer_options.accum_grad)
        except ScheduleLengthError:
            if scheduler.total_steps is None:
                raise
            per_epoch = None
        line = scheduler.set_run_length(per_epoch, trainer_options.max_epoch)
        logging.info(line)
        lines.append(line)
    return lines


# --------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------
_run_state = threading.local()


class ASRSERTrainer(Trainer):
    """ESPnet's trainer with atomic checkpoints, resume recovery and a non-finite limit."""

    @classmethod
    def build_options(cls, args: argparse.Namespace) -> TrainerOptions:
        options = build_dataclass(ASRSERTrainerOptions, args)
        if options.max_nonfinite_steps < 0:
            raise ValueError(
                f"--max_nonfinite_steps must be >= 0, got {options.max_nonfinite_steps}"
            )
        return options

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group("Trainer reliability related")
        group.add_argument(
            "--max_nonfinite_steps",
            type=int,
            default=DEFAULT_MAX_NONFINITE_STEPS,
            help="Stop training with an error after this many consecutive updates with "
            "a non-finite loss or gradient (each is skipped); 0: never stop",
        )

    @classmethod
    def run(cls, model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
            plot_attention_iter_factory, trainer_options, distributed_option) -> None:
        """``Trainer.run`` with atomic saves, resume recovery, one non-finite guard and the
        run's length given to ``warmuplinearlr`` schedulers."""
        set_schedule_lengths(schedulers, train_iter_factory, trainer_options)
        output_dir = Path(trainer_options.output_dir)
        is_writer = not distributed_option.distributed or distributed_option.dist_rank == 0
        if trainer_options.resume and is_writer:
            remove_stale_temporaries(output_dir)
            complete_interrupted_epoch(output_dir, trainer_options.best_model_criterion)
        if distributed_option.distributed:
            torch.distributed.barrier()
        limit = getattr(trainer_options, "max_nonfinite_steps", DEFAULT_MAX_NONFINITE_STEPS)
        previous = getattr(_run_state, "guard", None)
        _run_state.guard = NonFiniteGuard(limit)
        try:
            with atomic_checkpoint_saves():
                super().run(
                    model=model,
                    optimizers=optimizers,
                    schedulers=schedulers,
                    train_iter_factory=train_iter_factory,
                    valid_iter_factory=valid_iter_factory,
                    plot_attention_iter_factory=plot_attention_iter_factory,
                    trainer_options=trainer_options,
                    distributed_option=distributed_option,
                )
        finally:
            _run_state.guard = previous

    @classmethod
    def validate_one_epoch(cls, model, iterator, reporter, options, distributed_option) -> None:
        """ESPnet's validation, plus the stats pooled over the whole set.

        ``ua`` (unweighted accuracy, :func:`unweighted_accuracy`) and, from a CTC head,
        ``cer_ctc`` / ``wer_ctc`` (:func:`pooled_error_rates`). Each can be used as
        ``--best_model_criterion valid ua max`` (``valid wer_ctc min``) and
        ``--early_stopping_criterion valid ua max``.
        """
        super().validate_one_epoch(model=model, iterator=iterator, reporter=reporter,
                                   options=options, distributed_option=distributed_option)
        pooled = pooled_error_rates(reporter)
        ua = unweighted_accuracy(reporter)
        if ua is not None:
            pooled["ua"] = ua
        if pooled:
            reporter.register(pooled)
            reporter.next()

    @classmethod
    def train_one_epoch(cls, model, iterator, optimizers, schedulers, scaler, reporter,
                        summary_writer, options, distributed_option) -> bool:
        """ESPnet's epoch loop, watched by the run's :class:`NonFiniteGuard`."""
        guard = getattr(_run_state, "guard", None)
        if guard is None:  # called outside run(): one guard for this epoch
            guard = NonFiniteGuard(
                getattr(options, "max_nonfinite_steps", DEFAULT_MAX_NONFINITE_STEPS)
            )
        with guard.watch(model, optimizers, reporter):
            return super().train_one_epoch(
                model=model,
                iterator=iterator,
                optimizers=optimizers,
                schedulers=schedulers,
                scaler=scaler,
                reporter=reporter,
                summary_writer=summary_writer,
                options=options,
                distributed_option=distributed_option,
            )
