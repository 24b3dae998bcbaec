"""``ESPnetSERModel``: [frontend, specaug, normalize] -> encoder -> [personality fusion] ->
pooling -> classifier, with an optional CTC head on the encoder frames scored in validation
(``cer_ctc`` / ``wer_ctc``)."""

from itertools import groupby
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from espnet.nets.e2e_asr_common import ErrorCalculator
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from espnet_ser.ser.heads import AbsClassifier, AbsPooling


def ctc_greedy(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> List[List[int]]:
    """Best-path CTC decoding: argmax per frame, repeats merged, blanks removed."""
    best = log_probs.argmax(dim=-1).tolist()
    return [[i for i, _ in groupby(ids[:n]) if i != blank]
            for ids, n in zip(best, lengths.tolist())]


class ESPnetSERModel(AbsESPnetModel):
    """Loss ``CE(logits, emotion) + ctc_weight * CTC(encoder_out, text)`` (no CTC module and no
    transcript needed with ``ctc_weight == 0``). ``report_cer`` / ``report_wer``: score the CTC
    head in validation (:meth:`ctc_error_stats`); ``sym_space`` / ``sym_blank``: its symbols."""

    def __init__(
        self,
        num_classes: int,
        frontend: Optional[AbsFrontend],
        specaug: Optional[AbsSpecAug],
        normalize: Optional[AbsNormalize],
        encoder: AbsEncoder,
        pooling: AbsPooling,
        classifier: AbsClassifier,
        ctc: Optional[CTC] = None,
        ctc_weight: float = 0.0,
        class_weights: Optional[Sequence[float]] = None,
        emotions: Optional[Sequence[str]] = None,
        token_list: Optional[Sequence[str]] = None,
        blank_id: int = 0,
        report_cer: bool = True,
        report_wer: bool = True,
        sym_space: str = "<space>",
        sym_blank: str = "<blank>",
        personality_fusion: Optional[torch.nn.Module] = None,
    ):
        super().__init__()
        if not 0.0 <= ctc_weight:
            raise ValueError(f"ctc_weight must be >= 0: {ctc_weight}")
        if ctc_weight > 0 and ctc is None:
            raise ValueError("ctc_weight > 0 needs a CTC module")
        if emotions is not None and len(emotions) != num_classes:
            raise ValueError(f"{len(emotions)} emotions for {num_classes} classes")
        self.num_classes = num_classes
        self.frontend = frontend
        self.specaug = specaug
        self.normalize = normalize
        self.encoder = encoder
        self.pooling = pooling
        self.classifier = classifier
        self.personality_fusion = personality_fusion
        self.ctc = ctc if ctc_weight > 0 else None
        self.ctc_weight = float(ctc_weight)
        self.emotions = list(emotions) if emotions is not None else None
        self.token_list = list(token_list) if token_list is not None else None
        self.blank_id = blank_id
        self.error_calculator = None
        if self.ctc is not None and (report_cer or report_wer):
            if self.token_list is None:
                raise ValueError("model_conf.report_cer / report_wer need the token list of "
                                 "the CTC head (--token_list); set both false to score nothing")
            self.error_calculator = ErrorCalculator(self.token_list, sym_space, sym_blank,
                                                    report_cer, report_wer)
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(f"{len(class_weights)} class weights for {num_classes} classes")
        weights = None if class_weights is None else torch.tensor([float(w) for w in class_weights])
        # not saved in the state dict: it comes from the config
        self.register_buffer("class_weights", weights, persistent=False)

    def _extract_feats(self, speech, speech_lengths):
        speech = speech[:, : speech_lengths.max()]
        if self.frontend is not None:
            return self.frontend(speech, speech_lengths)
        return speech, speech_lengths

    def encode(self, speech: torch.Tensor, speech_lengths: torch.Tensor
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encoder frames ``(B, T', D)`` and their lengths."""
        feats, feats_lengths = self._extract_feats(speech, speech_lengths)
        if self.frontend is None and self.normalize is not None:
            # ESPnet's normalizations may work in place: keep the caller's tensor intact
            feats = feats.clone()
        if self.specaug is not None and self.training:
            feats, feats_lengths = self.specaug(feats, feats_lengths)
        if self.normalize is not None:
            feats, feats_lengths = self.normalize(feats, feats_lengths)
        out, out_lens, _ = self.encoder(feats, feats_lengths)
        if isinstance(out, tuple):  # encoders with intermediate outputs
            out = out[0]
        return out, out_lens

    def utterance_logits(self, encoder_out: torch.Tensor, encoder_out_lens: torch.Tensor,
                         personality: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of the encoder frames (fused with the ``(B, 10)``
        personalities when the model has a personality fusion, else ``personality`` unused)."""
        if self.personality_fusion is not None:
            if personality is None:
                raise ValueError("the model fuses personalities: the data needs 'personality' "
                                 "(data/<set>/utt2personality)")
            encoder_out = self.personality_fusion(encoder_out, encoder_out_lens, personality)
        return self.classifier(self.pooling(encoder_out, encoder_out_lens))

    def ce_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy averaged over the batch (class-weighted mean if weights are set)."""
        return F.cross_entropy(logits, target, weight=self.class_weights)

    def class_recall_stats(self, pred: torch.Tensor, target: torch.Tensor
                           ) -> Dict[str, torch.Tensor]:
        """Per-class ``cnt_<code>`` / ``hit_<code>`` batch fractions (the trainer pools ``ua``)."""
        names = self.emotions or [str(k) for k in range(self.num_classes)]
        correct = pred == target
        stats = {}
        for k, name in enumerate(names):
            in_k = target == k
            stats[f"cnt_{name}"] = in_k.float().mean().detach()
            stats[f"hit_{name}"] = (in_k & correct).float().mean().detach()
        return stats

    def ctc_error_stats(self, encoder_out: torch.Tensor, encoder_out_lens: torch.Tensor,
                        text: torch.Tensor, text_lengths: torch.Tensor
                        ) -> Dict[str, torch.Tensor]:
        """``err_`` / ``ref_`` ``cer_ctc`` / ``wer_ctc`` per utterance: greedy CTC errors (ESPnet's
        ``ErrorCalculator``) and reference units, pooled by the trainer."""
        calc = self.error_calculator

        def to_text(seqs):  # the reference side of ESPnet's conversion (no truncation)
            arrays = [np.array(x, dtype=np.int64) for x in seqs]
            return calc.convert_to_char(arrays, arrays)[1]

        hyps = to_text(ctc_greedy(self.ctc.log_softmax(encoder_out), encoder_out_lens,
                                  self.blank_id))
        refs = to_text([row[:n].tolist() for row, n in zip(text, text_lengths.tolist())])
        batch_size = len(refs)
        stats = {}
        for name, enabled, units, rate in (
            ("cer_ctc", calc.report_cer, lambda t: list(t.replace(" ", "")), calc.calculate_cer),
            ("wer_ctc", calc.report_wer, lambda t: t.split(), calc.calculate_wer),
        ):
            if not enabled:
                continue
            n_ref = sum(len(units(r)) for r in refs)
            if n_ref > 0:
                errors = round(rate(hyps, refs) * n_ref)
            else:  # no reference unit: every hypothesis unit is an insertion
                errors = sum(len(units(h)) for h in hyps)
            stats[f"err_{name}"] = torch.tensor(errors / batch_size)
            stats[f"ref_{name}"] = torch.tensor(n_ref / batch_size)
        return stats

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor, emotion: torch.Tensor,
                emotion_lengths: Optional[torch.Tensor] = None, text: Optional[torch.Tensor] = None,
                text_lengths: Optional[torch.Tensor] = None,
                personality: Optional[torch.Tensor] = None, **kwargs
                ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """Loss, stats and batch size; ``emotion``: class indices, ``(B,)`` or ``(B, 1)``;
        ``personality``: ``(B, 10)`` traits, for a model with a personality fusion."""
        batch_size = speech.size(0)
        target = emotion.reshape(batch_size, -1)[:, 0].long()
        encoder_out, encoder_out_lens = self.encode(speech, speech_lengths)
        logits = self.utterance_logits(encoder_out, encoder_out_lens, personality)
        loss_ce = self.ce_loss(logits, target)
        acc = (logits.argmax(dim=-1) == target).float().mean()

        stats = dict(loss_ce=loss_ce.detach(), acc=acc.detach())
        if not self.training:
            stats.update(self.class_recall_stats(logits.argmax(dim=-1), target))
        loss = loss_ce
        if self.ctc is not None:
            if text is None or text_lengths is None:
                raise ValueError("ctc_weight > 0 needs the transcript (data name 'text')")
            text = text[:, : text_lengths.max()]
            loss_ctc = self.ctc(encoder_out, encoder_out_lens, text, text_lengths)
            loss = loss_ce + self.ctc_weight * loss_ctc
            stats["loss_ctc"] = loss_ctc.detach()
            if not self.training and self.error_calculator is not None:
                stats.update(self.ctc_error_stats(encoder_out.detach(), encoder_out_lens,
                                                  text, text_lengths))
        stats["loss"] = loss.detach()
        loss, stats, weight = force_gatherable((loss, stats, batch_size), loss.device)
        return loss, stats, weight

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
                      ) -> Dict[str, torch.Tensor]:
        """Features for ESPnet's statistics collection (``--collect_stats``)."""
        feats, feats_lengths = self._extract_feats(speech, speech_lengths)
        return {"feats": feats, "feats_lengths": feats_lengths}

    @torch.no_grad()
    def predict(self, speech: torch.Tensor, speech_lengths: torch.Tensor,
                personality: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, Optional[List[List[int]]]]:
        """Class posteriors ``(B, num_classes)`` and, with a CTC head, greedy token ids."""
        encoder_out, encoder_out_lens = self.encode(speech, speech_lengths)
        logits = self.utterance_logits(encoder_out, encoder_out_lens, personality)
        posterior = torch.softmax(logits, dim=-1)
        if self.ctc is None:
            return posterior, None
        ids = ctc_greedy(self.ctc.log_softmax(encoder_out), encoder_out_lens, self.blank_id)
        return posterior, ids
