"""Joint ASR + SER model: ESPnet's hybrid CTC/attention AED with an emotion token.

The emotion is one more output unit (``<ang>``, ...) in the transcript, so the loss is
ESPnet's; the model adds ``acc_emo`` (teacher-forced accuracy of the emotion token among
the emotion tokens, used to pick checkpoints) and, with a style encoder (``gst`` or
``oracle``, :mod:`espnet_ser.asr.style`), passes its style to a style-conditioned encoder.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from espnet2.asr.espnet_model import ESPnetASRModel
from espnet2.torch_utils.device_funcs import force_gatherable

from espnet_ser.asr.style import AbsStyleEncoder
from espnet_ser.data.datadir import emotion_of_token


def emotion_token_ids(token_list: Sequence[str], emotion_tokens: Optional[Sequence[str]] = None):
    """Indices of the emotion tokens in ``token_list`` (all ``<xxx>`` codes by default)."""
    if emotion_tokens is None:
        return [i for i, t in enumerate(token_list) if emotion_of_token(t) is not None]
    missing = [t for t in emotion_tokens if t not in token_list]
    if missing:
        raise ValueError(f"emotion tokens not in the token list: {missing}")
    return [list(token_list).index(t) for t in emotion_tokens]


def emotion_accuracy(decoder_out: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor,
                     emo_ids: List[int]) -> Tuple[Optional[torch.Tensor], int]:
    """(Accuracy or None, utterances scored) of the emotion token among the emotion tokens at its
    reference position; ``decoder_out`` (B, L+1, V) is teacher-forced (position k predicts
    ``text[:, k]``)."""
    if not emo_ids:
        return None, 0
    ids = torch.tensor(emo_ids, device=text.device)
    L = min(text.size(1), decoder_out.size(1))
    valid = torch.arange(L, device=text.device)[None, :] < text_lengths[:, None]
    mask = torch.isin(text[:, :L], ids) & valid
    if not bool(mask.any()):
        return None, 0
    logits = decoder_out[:, :L][mask][:, ids]  # (N, n_emo)
    pred = ids[logits.argmax(dim=-1)]
    ref = text[:, :L][mask]
    return (pred == ref).float().mean(), int(mask.sum())


class ESPnetASRSERModel(ESPnetASRModel):
    """ESPnet's ASR model plus emotion-token bookkeeping (registered as ``asr_ser``)."""

    def __init__(self, *args, emotion_tokens: Optional[List[str]] = None,
                 style_encoder: Optional[AbsStyleEncoder] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.emotion_ids = emotion_token_ids(self.token_list, emotion_tokens)
        self.style_encoder = style_encoder
        if self.use_transducer_decoder or self.use_linear_decoder:
            raise ValueError("asr_ser decodes with an attention decoder")
        if self.aux_ctc is not None or self.lang_token_id is not None:
            raise ValueError("asr_ser does not support aux_ctc or lang_token_id")

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor, text: torch.Tensor,
                text_lengths: torch.Tensor, **kwargs
                ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """ESPnet's hybrid CTC/attention loss and stats, plus ``acc_emo``; ``kwargs`` holds the
        style encoder's data key (``style_speech`` or ``emotion``)."""
        text[text == -1] = self.ignore_id
        text = text[:, : text_lengths.max()]
        encoder_out, encoder_out_lens = self.encode(speech, speech_lengths, self.style(kwargs))
        intermediate_outs = None
        if isinstance(encoder_out, tuple):
            encoder_out, intermediate_outs = encoder_out
        stats: Dict[str, Optional[torch.Tensor]] = {}
        loss_ctc = loss_att = acc_att = cer_att = wer_att = None
        if self.ctc_weight != 0.0:
            loss_ctc, cer_ctc = self._calc_ctc_loss(encoder_out, encoder_out_lens, text,
                                                    text_lengths)
            stats.update(loss_ctc=loss_ctc.detach(), cer_ctc=cer_ctc)
        if self.interctc_weight != 0.0 and intermediate_outs is not None:
            losses = []
            for layer_idx, out in intermediate_outs:
                loss_ic, cer_ic = self._calc_ctc_loss(out, encoder_out_lens, text, text_lengths)
                losses.append(loss_ic)
                stats[f"loss_interctc_layer{layer_idx}"] = loss_ic.detach()
                stats[f"cer_interctc_layer{layer_idx}"] = cer_ic
            w = self.interctc_weight
            loss_ctc = (1 - w) * loss_ctc + w * (sum(losses) / len(losses))
        decoder_outs: List[torch.Tensor] = []
        if self.ctc_weight != 1.0:
            # ESPnet's attention loss; the hook keeps the teacher-forced output for acc_emo
            hook = self.decoder.register_forward_hook(lambda m, i, o: decoder_outs.append(o[0]))
            try:
                loss_att, acc_att, cer_att, wer_att = self._calc_att_loss(
                    encoder_out, encoder_out_lens, text, text_lengths)
            finally:
                hook.remove()
        if self.ctc_weight == 0.0:
            loss = loss_att
        elif self.ctc_weight == 1.0:
            loss = loss_ctc
        else:
            loss = self.ctc_weight * loss_ctc + (1 - self.ctc_weight) * loss_att
        stats.update(loss_att=loss_att.detach() if loss_att is not None else None,
                     acc=acc_att, cer=cer_att, wer=wer_att, loss=loss.detach())
        if decoder_outs and self.emotion_ids:
            acc, _ = emotion_accuracy(decoder_outs[0].detach(), text, text_lengths,
                                      self.emotion_ids)
            if acc is not None:
                stats["acc_emo"] = acc
        return force_gatherable((loss, stats, speech.shape[0]), loss.device)

    @property
    def style_input_name(self) -> Optional[str]:
        """Data key the style encoder reads (None without a style encoder)."""
        return None if self.style_encoder is None else self.style_encoder.input_name

    def style(self, inputs: Dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
        """Style vector (B, D) from the batch entries ``inputs`` (None without a style encoder)."""
        if self.style_encoder is None:
            return None
        name = self.style_encoder.input_name
        if inputs.get(name) is None:
            raise ValueError(f"the style encoder ({type(self.style_encoder).__name__}) reads the "
                             f"data key '{name}', which this batch lacks; add "
                             f"'--train_data_path_and_name_and_type <file>,{name},<type>' (and "
                             "the valid one) for training, or pass it to inference")
        return self.style_encoder(inputs[name], inputs.get(f"{name}_lengths"))

    def encode(self, speech: torch.Tensor, speech_lengths: torch.Tensor,
               style: Optional[torch.Tensor] = None, **style_inputs
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """ESPnet's ``encode``, passing the style (B, D) to a style-conditioned encoder: ``style``
        or, so that ``encode(**batch)`` works as ESPnet's ``Speech2Text`` calls it, the style of
        the style encoder's data key in ``style_inputs``."""
        if style is None and self.style_encoder is not None:
            style = self.style(style_inputs)
        if style is None:
            return super().encode(speech, speech_lengths)
        if not getattr(self.encoder, "accepts_style", False):
            raise ValueError(f"{type(self.encoder).__name__} takes no style; "
                             "use encoder: gst_conformer")
        # ESPnet's encode calls self.encoder(feats, lengths[, ctc=...]): add style=style
        hook = self.encoder.register_forward_pre_hook(
            lambda m, args, kwargs: (args, dict(kwargs, style=style)), with_kwargs=True)
        try:
            return super().encode(speech, speech_lengths)
        finally:
            hook.remove()
