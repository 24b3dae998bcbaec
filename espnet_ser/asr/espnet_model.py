"""Joint ASR + SER model: ESPnet's hybrid CTC/attention AED with an emotion token.

The emotion is recognised as one more output unit (``<ang>``, ``<hap>``, ...) placed in
the transcript (stage 2), so the loss is exactly ESPnet's
``ctc_weight * L_ctc + (1 - ctc_weight) * L_att``. On top of ESPnet's statistics the
model reports ``acc_emo``: how often the attention decoder, teacher-forced on the
reference prefix, ranks the reference emotion token first among the emotion tokens at
the position where the reference places it. Validation ``acc_emo`` is what the
recipes use to pick and average the best checkpoints for emotion.

With a style encoder (``style_encoder: gst`` or ``oracle``, see
:mod:`espnet_ser.asr.style`) the model computes a style vector from the style encoder's
own data key (``style_speech``: the GST log-mel dump; ``emotion``: reference emotion ids)
and passes it to a style-conditioned encoder (``encoder: gst_conformer``). Without one,
every computation is ESPnet's.
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


def emotion_accuracy(
    decoder_out: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor, emo_ids: List[int]
) -> Tuple[Optional[torch.Tensor], int]:
    """Accuracy of the emotion token among emotion tokens, at its reference position.

    ``decoder_out`` (B, L+1, V) are the teacher-forced decoder outputs whose position k
    predicts ``text[:, k]``. Returns (accuracy or None, number of utterances scored).
    """
    if not emo_ids:
        return None, 0
    ids = torch.tensor(emo_ids, device=text.device)
    L = min(text.size(1), decoder_out.size(1))
    mask = torch.isin(text[:, :L], ids)
    valid = torch.arange(L, device=text.device)[None, :] < text_lengths[:, None]
    mask = mask & valid
    if not bool(mask.any()):
        return None, 0
    logits = decoder_out[:, :L][mask][:, ids]  # (N, n_emo)
    pred = ids[logits.argmax(dim=-1)]
    ref = text[:, :L][mask]
    return (pred == ref).float().mean(), int(mask.sum())


class ESPnetASRSERModel(ESPnetASRModel):
    """ESPnet's ASR model plus emotion-token bookkeeping (registered as ``asr_ser``)."""

    def __init__(
        self,
        *args,
        emotion_tokens: Optional[List[str]] = None,
        style_encoder: Optional[AbsStyleEncoder] = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.emotion_ids = emotion_token_ids(self.token_list, emotion_tokens)
        self.style_encoder = style_encoder
        self._forward_style = None
        self._decoder_out = None
        if self.decoder is not None:
            self.decoder.register_forward_hook(self._keep_decoder_out)

    def _keep_decoder_out(self, module, inputs, output):
        if self._capture:
            self._decoder_out = output[0] if isinstance(output, tuple) else output

    _capture = False

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        self._capture, self._decoder_out = True, None
        # ESPnet's forward calls self.encode(speech, lengths): the style reaches it here
        self._forward_style = self.style(kwargs)
        try:
            loss, stats, weight = super().forward(
                speech, speech_lengths, text, text_lengths, **kwargs
            )
        finally:
            self._capture, self._forward_style = False, None
        decoder_out, self._decoder_out = self._decoder_out, None
        if decoder_out is not None and self.emotion_ids:
            text = text[:, : int(text_lengths.max())]
            acc, n = emotion_accuracy(decoder_out.detach(), text, text_lengths, self.emotion_ids)
            if acc is not None:
                stats["acc_emo"] = acc
                loss, stats, weight = force_gatherable((loss, stats, weight), loss.device)
        return loss, stats, weight

    # ------------------------------------------------------------------------------
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
            raise ValueError(
                f"the style encoder ({type(self.style_encoder).__name__}) reads the data key "
                f"'{name}', which this batch lacks; add "
                f"'--train_data_path_and_name_and_type <file>,{name},<type>' (and the valid "
                f"one) for training, or pass it to inference"
            )
        return self.style_encoder(inputs[name], inputs.get(f"{name}_lengths"))

    def encode(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        style: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """ESPnet's frontend + encoder, passing ``style`` to a style-conditioned encoder."""
        if style is None:
            style = self._forward_style
        if style is None:
            return super().encode(speech, speech_lengths)
        if not getattr(self.encoder, "accepts_style", False):
            raise ValueError(f"{type(self.encoder).__name__} takes no style; use encoder: gst_conformer")
        feats, feats_lengths = self._extract_feats(speech, speech_lengths)
        if self.specaug is not None and self.training:
            feats, feats_lengths = self.specaug(feats, feats_lengths)
        if self.normalize is not None:
            feats, feats_lengths = self.normalize(feats, feats_lengths)
        if self.preencoder is not None:
            feats, feats_lengths = self.preencoder(feats, feats_lengths)
        encoder_out, encoder_out_lens, _ = self.encoder(feats, feats_lengths, style=style)
        if self.postencoder is not None:
            encoder_out, encoder_out_lens = self.postencoder(encoder_out, encoder_out_lens)
        return encoder_out, encoder_out_lens
