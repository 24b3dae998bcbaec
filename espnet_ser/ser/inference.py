"""``SERTask`` inference: argmax emotion, class posterior and CTC transcript of (T, D) features
or (T,) waveforms (and, for a personality-fusion model, each utterance's ten traits); a
problem of one utterance is an :class:`UtteranceError` for it only."""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from espnet_ser.ser.espnet_model import ctc_greedy

PathLike = Union[str, Path]
SPACE = "<space>"
SKIP_TOKENS = frozenset({"<blank>", "<sos/eos>", "<sos>", "<eos>", "<pad>"})


class UtteranceError(RuntimeError):
    """One utterance cannot be predicted; the others can."""


@dataclass
class EmotionResult:
    emotion: str  # argmax class code
    posterior: Dict[str, float]  # class code -> probability, in class order
    text: Optional[str]  # CTC greedy transcript (None: the model has no CTC head)
    token_ids: Optional[List[int]] = None


def tokens_to_text(ids: Sequence[int], token_list: Sequence[str], blank_id: int = 0) -> str:
    """Join greedy CTC token ids into a transcript: ``<space>`` is a space, specials dropped."""
    out = []
    for i in ids:
        if i != blank_id and not 0 <= i < len(token_list):
            raise ValueError(f"token id {i} is outside the token list ({len(token_list)} tokens)")
        if i != blank_id and token_list[i] not in SKIP_TOKENS:
            out.append(" " if token_list[i] == SPACE else token_list[i])
    return " ".join("".join(out).split())


def pad_inputs(arrays: Sequence[np.ndarray]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad ``(T,)`` or ``(T, D)`` arrays to a batch ``(B, T_max[, D])`` and their lengths."""
    ndims = {a.ndim for a in arrays}
    if len(ndims) != 1:
        raise ValueError(f"inputs of different ranks in one batch: {sorted(ndims)}")
    lengths = [a.shape[0] for a in arrays]
    if arrays[0].ndim == 2 and len({a.shape[1] for a in arrays}) != 1:
        raise ValueError(f"inputs of different dimensions in one batch: "
                         f"{sorted({a.shape[1] for a in arrays})}")
    shape = (len(arrays), max(lengths)) + tuple(arrays[0].shape[1:])
    batch = np.zeros(shape, dtype=np.float32)
    for k, a in enumerate(arrays):
        batch[k, : a.shape[0]] = a
    return torch.from_numpy(batch), torch.tensor(lengths, dtype=torch.long)


def check_input(x) -> np.ndarray:
    """A model input as float32 ``(T,)`` or ``(T, D)``; raises UtteranceError otherwise."""
    if isinstance(x, tuple):  # kaldiio gives (rate, samples) for wav data
        x = x[1]
    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise UtteranceError(f"expected a (T,) waveform or (T, D) features, got shape {x.shape}")
    if x.shape[0] == 0:
        raise UtteranceError("empty input (0 frames)")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise UtteranceError("the input holds NaN or infinite values")
    return x


class Speech2Emotion:
    """Predict emotion, posterior and (with a CTC head) the transcript of inputs."""

    def __init__(self, model, device: str = "cpu"):
        if model.emotions is None:
            raise ValueError("the model has no emotion list (config 'emotions')")
        self.model = model.eval()
        self.device = device
        self.emotions = list(model.emotions)
        self.token_list = list(model.token_list) if model.token_list is not None else None
        self.has_ctc = getattr(model, "ctc", None) is not None
        self.needs_personality = getattr(model, "personality_fusion", None) is not None
        if self.has_ctc and self.token_list is None:
            raise ValueError("the model has a CTC head but no token list")
        self._min_length: Dict[tuple, int] = {}

    @classmethod
    def from_exp_dir(cls, exp_dir: PathLike, model_file: Optional[PathLike] = None,
                     device: str = "cpu") -> "Speech2Emotion":
        from espnet_ser.tasks.ser import SERTask
        from espnet_ser.utils.jobs import experiment_files

        config, model_file = experiment_files(exp_dir, model_file)
        model, _ = SERTask.build_model_from_file(config, model_file, device)
        return cls(model, device=device)

    @torch.no_grad()
    def _gives_output(self, length: int, trailing: tuple) -> bool:
        x = torch.zeros((1, length) + trailing, device=self.device)
        try:
            _, n = self.model.encode(x, torch.tensor([length], device=self.device))
        except Exception:
            return False
        return int(n[0]) > 0

    def min_input_length(self, trailing: tuple = ()) -> int:
        """The shortest input the encoder accepts alone (bisection; padded batches hide it)."""
        if trailing not in self._min_length:
            lo, hi = 1, 1 << 12
            if self._gives_output(lo, trailing) or not self._gives_output(hi, trailing):
                self._min_length[trailing] = 1  # nothing to check (or cannot tell)
            else:
                while hi - lo > 1:  # lo fails, hi works
                    mid = (lo + hi) // 2
                    if self._gives_output(mid, trailing):
                        hi = mid
                    else:
                        lo = mid
                self._min_length[trailing] = hi
        return self._min_length[trailing]

    @torch.no_grad()
    def predict_batch(self, inputs: Sequence[np.ndarray],
                      personality: Optional[Sequence[np.ndarray]] = None
                      ) -> List[Union[EmotionResult, UtteranceError]]:
        """Results of one padded batch (``personality``: one ``(10,)`` vector an input, for a
        personality-fusion model); an utterance-level problem is returned, not raised."""
        if self.needs_personality and personality is None:
            raise ValueError("the model fuses personalities: give each input's traits "
                             "(utt2personality)")
        if len(inputs) > 1:
            need = self.min_input_length(tuple(inputs[0].shape[1:]))
            short = [k for k, x in enumerate(inputs) if x.shape[0] < need]
            if short:
                keep = [k for k in range(len(inputs)) if k not in short]
                kept = None if personality is None else [personality[k] for k in keep]
                rest = iter(self.predict_batch([inputs[k] for k in keep], kept) if keep else [])
                return [UtteranceError(f"input too short: {x.shape[0]} frames, the encoder "
                                       f"needs at least {need}") if k in short else next(rest)
                        for k, x in enumerate(inputs)]
        speech, lengths = pad_inputs(inputs)
        speech, lengths = speech.to(self.device), lengths.to(self.device)
        enc, enc_lens = self.model.encode(speech, lengths)
        traits = None
        if self.needs_personality:
            traits = torch.from_numpy(np.stack(personality).astype(np.float32)).to(self.device)
        logits = self.model.utterance_logits(enc, enc_lens, traits)
        posterior = torch.softmax(logits.float(), dim=-1).cpu()
        ids = None
        if self.has_ctc:
            ids = ctc_greedy(self.model.ctc.log_softmax(enc), enc_lens, self.model.blank_id)
        out: List[Union[EmotionResult, UtteranceError]] = []
        for k, x in enumerate(inputs):
            n_enc = int(enc_lens[k])
            if n_enc <= 0:
                out.append(UtteranceError(f"input too short: {x.shape[0]} frames leave the "
                                          "encoder no output frame"))
                continue
            p = posterior[k].tolist()
            if not all(math.isfinite(v) for v in p):
                out.append(UtteranceError("non-finite class posterior"))
                continue
            best = int(np.argmax(p))
            text = None
            if ids is not None:
                text = tokens_to_text(ids[k], self.token_list, self.model.blank_id)
            out.append(EmotionResult(emotion=self.emotions[best],
                                     posterior=dict(zip(self.emotions, p)), text=text,
                                     token_ids=None if ids is None else ids[k]))
        return out

    def __call__(self, x: np.ndarray, personality: Optional[np.ndarray] = None
                 ) -> EmotionResult:
        """The result of one input; raises UtteranceError (or the model's error) on failure."""
        (r,) = self.predict_batch([check_input(x)],
                                  None if personality is None else [personality])
        if isinstance(r, Exception):
            raise r
        return r

    def predict_many(self, loaders: Sequence[Tuple[str, Callable[[], np.ndarray]]],
                     batch_size: int = 1, chunk: int = 16,
                     personality: Optional[Mapping[str, np.ndarray]] = None
                     ) -> Dict[str, Union[EmotionResult, Exception]]:
        """``utt -> result or exception`` for ``(utt, load)`` pairs, batched by length (a batch
        that raises is redone one by one); ``personality``: utt -> traits, for a
        personality-fusion model (an utterance without traits fails alone)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if self.needs_personality and personality is None:
            raise ValueError("the model fuses personalities: give the traits of the "
                             "utterances (utt2personality)")
        traits = personality if self.needs_personality else None
        results: Dict[str, Union[EmotionResult, Exception]] = {}
        step = batch_size * max(1, chunk)
        for start in range(0, len(loaders), step):
            ready: List[Tuple[str, np.ndarray]] = []
            for utt, load in loaders[start: start + step]:
                if traits is not None and utt not in traits:
                    results[utt] = UtteranceError("no personality traits for this utterance")
                    continue
                try:
                    ready.append((utt, check_input(load())))
                except Exception as e:
                    results[utt] = e
            ready.sort(key=lambda t: (t[1].ndim, t[1].shape[0]))
            for b in range(0, len(ready), batch_size):
                part = ready[b: b + batch_size]
                p = None if traits is None else [traits[utt] for utt, _ in part]
                try:
                    outs = self.predict_batch([x for _, x in part], p)
                except Exception as e:
                    outs = [e] if len(part) == 1 else [
                        self._predict_or_error(x, None if p is None else p[k])
                        for k, (_, x) in enumerate(part)]
                for (utt, _), r in zip(part, outs):
                    results[utt] = r
        return results

    def _predict_or_error(self, x: np.ndarray, personality: Optional[np.ndarray] = None
                          ) -> Union[EmotionResult, Exception]:
        try:
            return self.predict_batch([x], None if personality is None else [personality])[0]
        except Exception as e:
            return e
