"""``ToolkitTrainer`` (docs/RELIABILITY.md): ESPnet's trainer plus atomic checkpoints, ``--resume``
recovery, ``--max_nonfinite_steps``, run-length ``warmuplinearlr``, pooled ``ua`` / ``*_ctc`` rates."""

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
from espnet_ser.utils.averaging import CHECKPOINT_NAME, load_training_checkpoint
from espnet_ser.utils.io import atomic_symlink, atomic_torch_save

DEFAULT_MAX_NONFINITE_STEPS = 100

# Temporary names made by espnet_ser.utils.io (".<name>.<random>.tmp", ".<name>.<pid>.lnk").
_TEMPORARY_RE = re.compile(r"^\..+\.pth\.[^/]+\.(tmp|lnk)$")


class NonFiniteTrainingError(RuntimeError):
    """Too many consecutive updates had a non-finite loss or gradient."""


@dataclasses.dataclass
class ToolkitTrainerOptions(TrainerOptions):
    """ESPnet's trainer options plus ``max_nonfinite_steps``."""

    max_nonfinite_steps: int = DEFAULT_MAX_NONFINITE_STEPS


class _AtomicSaveTorch:
    """``torch`` for ESPnet's trainer modules, with ``save(obj, path)`` made atomic."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def save(self, obj, f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)) and not args and not kwargs:
            atomic_torch_save(obj, f)
        else:
            self._real.save(obj, f, *args, **kwargs)


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


def remove_stale_temporaries(output_dir: Path) -> List[Path]:
    """Delete temporary checkpoint files / links left by a killed writer."""
    removed = [p for p in (output_dir.iterdir() if output_dir.is_dir() else ())
               if _TEMPORARY_RE.match(p.name) and (p.is_symlink() or p.is_file())]
    for p in removed:
        p.unlink()
    if removed:
        logging.warning("Removed temporary files of an interrupted write: "
                        + ", ".join(p.name for p in removed))
    return removed


def complete_interrupted_epoch(output_dir: Path, best_model_criterion) -> Optional[int]:
    """Rebuild the ``{epoch}epoch.pth`` and links of ``checkpoint.pth``'s epoch that a kill
    after the checkpoint write left missing; returns that epoch (None: no checkpoint)."""
    ckpt = output_dir / CHECKPOINT_NAME
    if not ckpt.is_file():
        return None
    states, reporter = load_training_checkpoint(output_dir)
    epoch = reporter.get_epoch()
    if epoch < 1:
        return epoch
    epoch_file = output_dir / f"{epoch}epoch.pth"
    if not epoch_file.is_file():
        logging.warning(f"{epoch_file.name} is missing; rebuilding it from {ckpt.name}")
        atomic_torch_save(states["model"], epoch_file)
    del states
    links = [(epoch_file, output_dir / "latest.pth")]
    for phase, key, mode in best_model_criterion:
        if reporter.has(phase, key):
            best = output_dir / f"{reporter.get_best_epoch(phase, key, mode)}epoch.pth"
            links.append((best, output_dir / f"{phase}.{key}.best.pth"))
    for target, link in links:
        if target.is_file() and os.path.realpath(link) != os.path.realpath(target):
            atomic_symlink(target, link)
    return epoch


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
    """Counts updates skipped for a non-finite loss (given NaN gradients, so ESPnet skips it)
    or gradient; raises :class:`NonFiniteTrainingError` after ``max_consecutive`` (0: never)."""

    def __init__(self, max_consecutive: int = DEFAULT_MAX_NONFINITE_STEPS):
        if max_consecutive < 0:
            raise ValueError(f"--max_nonfinite_steps must be >= 0, got {max_consecutive}")
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
                f"{limit if limit > 0 else 'none'})")
            if 0 < limit <= self.consecutive:
                raise NonFiniteTrainingError(
                    f"{self.consecutive} consecutive updates had a non-finite loss or "
                    f"gradient (--max_nonfinite_steps {limit}); training stopped. The last "
                    f"complete checkpoint is kept; lower the learning rate, check the data "
                    f"or raise the limit (0: never stop).")

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
            logging.warning(f"{state['skipped']} of {state['updates']} updates in this epoch "
                            "were skipped because of a non-finite loss or gradient")
        else:
            logging.info(f"0 of {state['updates']} updates skipped (non-finite)")


def _pooled_ratios(reporter: SubReporter, numerator: str, denominator: str) -> Dict[str, float]:
    """``{name: <numerator><name> / <denominator><name>}`` of the epoch averages of per-batch
    fractions (= ratio of the set's totals); names with a missing or zero denominator left out."""
    ratios = {}
    for key in reporter.stats:
        name = key[len(numerator):]
        if key.startswith(numerator) and denominator + name in reporter.stats:
            total = aggregate(reporter.stats[denominator + name])
            if total > 0:
                ratios[name] = float(aggregate(reporter.stats[key]) / total)
    return ratios


def unweighted_accuracy(reporter: SubReporter) -> Optional[float]:
    """Mean recall over the classes present (``hit_<c>`` / ``cnt_<c>``); None without stats."""
    recalls = list(_pooled_ratios(reporter, "hit_", "cnt_").values())
    return float(sum(recalls) / len(recalls)) if recalls else None


def pooled_error_rates(reporter: SubReporter) -> Dict[str, float]:
    """``{name: errors / reference units}`` over the epoch from ``err_<name>`` / ``ref_<name>``."""
    return _pooled_ratios(reporter, "err_", "ref_")


def set_schedule_lengths(schedulers, train_iter_factory, trainer_options) -> List[str]:
    """Give every ``warmuplinearlr`` scheduler the run's updates; log and return the lines."""
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


_run_state = threading.local()


def _new_guard(options) -> NonFiniteGuard:
    return NonFiniteGuard(getattr(options, "max_nonfinite_steps", DEFAULT_MAX_NONFINITE_STEPS))


class ToolkitTrainer(Trainer):
    """ESPnet's trainer with the additions listed in the module docstring."""

    @classmethod
    def build_options(cls, args: argparse.Namespace) -> TrainerOptions:
        options = build_dataclass(ToolkitTrainerOptions, args)
        NonFiniteGuard(options.max_nonfinite_steps)  # refuses a negative limit
        return options

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group("Trainer reliability related")
        group.add_argument(
            "--max_nonfinite_steps", type=int, default=DEFAULT_MAX_NONFINITE_STEPS,
            help="Stop training with an error after this many consecutive updates with "
            "a non-finite loss or gradient (each is skipped); 0: never stop")

    @classmethod
    def run(cls, model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
            plot_attention_iter_factory, trainer_options, distributed_option) -> None:
        set_schedule_lengths(schedulers, train_iter_factory, trainer_options)
        output_dir = Path(trainer_options.output_dir)
        is_writer = not distributed_option.distributed or distributed_option.dist_rank == 0
        if trainer_options.resume and is_writer:
            remove_stale_temporaries(output_dir)
            complete_interrupted_epoch(output_dir, trainer_options.best_model_criterion)
        if distributed_option.distributed:
            torch.distributed.barrier()
        previous = getattr(_run_state, "guard", None)
        _run_state.guard = _new_guard(trainer_options)
        try:
            with atomic_checkpoint_saves():
                super().run(model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
                            plot_attention_iter_factory, trainer_options, distributed_option)
        finally:
            _run_state.guard = previous

    @classmethod
    def validate_one_epoch(cls, model, iterator, reporter, options, distributed_option) -> None:
        """ESPnet's validation plus pooled ``ua``, ``cer_ctc`` / ``wer_ctc``."""
        super().validate_one_epoch(model, iterator, reporter, options, distributed_option)
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
        guard = getattr(_run_state, "guard", None) or _new_guard(options)  # None: outside run()
        with guard.watch(model, optimizers, reporter):
            return super().train_one_epoch(model, iterator, optimizers, schedulers, scaler,
                                           reporter, summary_writer, options, distributed_option)


ASRSERTrainer, ASRSERTrainerOptions = ToolkitTrainer, ToolkitTrainerOptions  # old names
