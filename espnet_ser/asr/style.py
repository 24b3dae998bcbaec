"""Style sources for a style-conditioned encoder.

A style encoder turns one extra per-utterance input into a style vector (B, D) that a
style-conditioned encoder (``encoder: gst_conformer``) adds inside its blocks. Each
style encoder names the data key it reads (``input_name``), which the recipe provides
as one more ``--*_data_path_and_name_and_type`` entry:

======================  ===============  ==========================================
``style_encoder``       ``input_name``   data
======================  ===============  ==========================================
``gst``                 ``style_speech``  the GST log-mel dump, ``feats.scp,style_speech,kaldi_ark``
``oracle``              ``emotion``       reference emotion ids, ``emotion_id,emotion,text_int``
======================  ===============  ==========================================

``oracle`` is the upper bound of the joint ASR + SER paper: the one-hot reference
emotion as the style, so it needs the reference label at decoding time too.
"""

from abc import ABC, abstractmethod
from typing import Optional

import torch


class AbsStyleEncoder(torch.nn.Module, ABC):
    """Maps a per-utterance input (B, T, ...) with lengths (B,) to a style (B, D)."""

    input_name: str = ""

    @abstractmethod
    def output_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def forward(self, x: torch.Tensor, x_lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        raise NotImplementedError


class OracleEmotionStyle(AbsStyleEncoder):
    """The one-hot reference emotion as the style vector (no parameters).

    Its input is the integer id of the reference emotion, the index of the emotion in
    the recipe's ``emotions`` list (``data/token_*/<set>/emotion_id``).
    """

    input_name = "emotion"

    def __init__(self, n_emotions: int = 4):
        super().__init__()
        if n_emotions < 1:
            raise ValueError(f"n_emotions must be >= 1, got {n_emotions}")
        self.n_emotions = n_emotions

    def output_size(self) -> int:
        return self.n_emotions

    def forward(self, x: torch.Tensor, x_lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        ids = x.reshape(x.size(0), -1)[:, 0].long()
        bad = (ids < 0) | (ids >= self.n_emotions)
        if bool(bad.any()):
            raise ValueError(
                f"emotion id {int(ids[bad][0])} outside 0..{self.n_emotions - 1} "
                f"(n_emotions={self.n_emotions})"
            )
        return torch.nn.functional.one_hot(ids, self.n_emotions).float()
