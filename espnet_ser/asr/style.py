"""Style sources of ``encoder: gst_conformer``: each maps the input under its data key
``input_name`` to a style (B, D). ``gst`` reads ``style_speech`` (GST log-mel dump); ``oracle``
reads ``emotion`` (reference ids; the one-hot upper bound, needing labels when decoding)."""

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
    """One-hot reference emotion id (index in the recipe's ``emotions``) as the style."""

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
            raise ValueError(f"emotion id {int(ids[bad][0])} outside 0..{self.n_emotions - 1} "
                             f"(n_emotions={self.n_emotions})")
        return torch.nn.functional.one_hot(ids, self.n_emotions).float()
