"""Speaker and listener personalities fused into the encoder frames (the personality paper).

The input is ``utt2personality``'s ten numbers per utterance, ``(B, 10)``: the speaker's
Big-Five traits ``P_s`` (O C E A N) then the listener's ``P_l``, used as they are (1-7).

- projections ``q_s = W_s P_s``, ``q_l = W_l P_l`` to the frame size H (eqs. 1-2);
- interaction (eqs. 3-4): ``q'_s = q_s + MHA(q_s, q_l, q_l)`` (listener -> speaker),
  ``q'_l = q_l + MHA(q_l, q_s, q_s)`` (speaker -> listener). With one key the attention
  weight is 1, so each is a learned linear map of the other side added to it;
- fusion (eq. 5): ``F' = F + MHA(q, F, F)``, the personality the query (length 1) and the
  valid frames key and value; the context vector is added to every frame. With both sides,
  ``sequential`` (eq. 6) fuses the speaker, then the listener into the result; ``parallel``
  (eq. 7) attends with both queries in one MHA and adds the mean of the two contexts.

``speaker`` / ``listener``: ``none``, ``projected`` (``q``) or ``interacted`` (``q'``); the 13
rows of the paper's Table 2 are the 13 valid combinations with ``fusion`` for two sides.
"""

from typing import List, Optional

import torch
from espnet2.train.class_choices import ClassChoices

from espnet_ser.ser.heads import valid_mask

SIDES = ("none", "projected", "interacted")
FUSIONS = ("sequential", "parallel")
TRAITS = 5  # O C E A N


def _mha(size: int, num_heads: int, dropout: float) -> torch.nn.MultiheadAttention:
    return torch.nn.MultiheadAttention(size, num_heads, dropout=dropout, batch_first=True)


class PersonalityFusion(torch.nn.Module):
    """Frames ``(B, T, H)``, lengths ``(B,)`` and personality ``(B, 10)`` -> fused frames."""

    def __init__(self, input_size: int, speaker: str = "projected", listener: str = "none",
                 fusion: Optional[str] = None, num_heads: int = 8, dropout: float = 0.0,
                 proj_bias: bool = True):
        super().__init__()
        for name, value in (("speaker", speaker), ("listener", listener)):
            if value not in SIDES:
                raise ValueError(f"personality_fusion_conf.{name} must be one of {SIDES}: {value}")
        fused = [side for side, use in (("speaker", speaker), ("listener", listener))
                 if use != "none"]
        if not fused:
            raise ValueError("personality_fusion with speaker and listener none fuses nothing: "
                             "leave personality_fusion unset for the model without personality")
        if len(fused) == 2 and fusion not in FUSIONS:
            raise ValueError(f"speaker and listener are both fused: personality_fusion_conf."
                             f"fusion must be one of {FUSIONS}, got {fusion}")
        if len(fused) == 1 and fusion is not None:
            raise ValueError(f"only the {fused[0]} is fused: personality_fusion_conf.fusion "
                             f"applies to two sides, leave it unset (got {fusion})")
        if input_size % num_heads:
            raise ValueError(f"the frame size {input_size} is not a multiple of num_heads "
                             f"{num_heads}")
        self.speaker, self.listener, self.fusion = speaker, listener, fusion
        # a side is projected when it is fused or when the other side attends to it
        use_s = speaker != "none" or listener == "interacted"
        use_l = listener != "none" or speaker == "interacted"
        self.proj_speaker = torch.nn.Linear(TRAITS, input_size, bias=proj_bias) if use_s else None
        self.proj_listener = torch.nn.Linear(TRAITS, input_size, bias=proj_bias) if use_l else None
        self.listener_to_speaker = (_mha(input_size, num_heads, dropout)
                                    if speaker == "interacted" else None)
        self.speaker_to_listener = (_mha(input_size, num_heads, dropout)
                                    if listener == "interacted" else None)
        num_fusions = 1 if fusion == "parallel" else len(fused)
        self.fuse = torch.nn.ModuleList(_mha(input_size, num_heads, dropout)
                                        for _ in range(num_fusions))

    def queries(self, personality: torch.Tensor) -> List[torch.Tensor]:
        """The fused personality representations ``(B, 1, H)``, speaker first."""
        if personality.dim() != 2 or personality.size(1) != 2 * TRAITS:
            raise ValueError(f"personality must be (batch, {2 * TRAITS}): speaker O C E A N then "
                             f"listener O C E A N, got shape {tuple(personality.shape)}")
        p = personality.unsqueeze(1)  # (B, 1, 10)
        q_s = self.proj_speaker(p[..., :TRAITS]) if self.proj_speaker is not None else None
        q_l = self.proj_listener(p[..., TRAITS:]) if self.proj_listener is not None else None
        out = []
        if self.speaker != "none":
            q = q_s
            if self.listener_to_speaker is not None:  # eq. 3
                q = q_s + self.listener_to_speaker(q_s, q_l, q_l, need_weights=False)[0]
            out.append(q)
        if self.listener != "none":
            q = q_l
            if self.speaker_to_listener is not None:  # eq. 4
                q = q_l + self.speaker_to_listener(q_l, q_s, q_s, need_weights=False)[0]
            out.append(q)
        return out

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor, personality: torch.Tensor
                ) -> torch.Tensor:
        queries = self.queries(personality.to(frames.dtype))
        padding = ~valid_mask(lengths, frames.size(1))
        if self.fusion == "parallel":  # eq. 7
            context = self.fuse[0](torch.cat(queries, dim=1), frames, frames,
                                   key_padding_mask=padding, need_weights=False)[0]
            return frames + context.mean(dim=1, keepdim=True)
        for attention, q in zip(self.fuse, queries):  # eq. 5, or eq. 6 in turn
            frames = frames + attention(q, frames, frames, key_padding_mask=padding,
                                        need_weights=False)[0]
        return frames


# The rows of the paper's Table 2: (speaker, listener, fusion); row 0 has no fusion at all.
_P, _I, _N = "projected", "interacted", "none"
TABLE2_ROWS = {
    0: None,
    1: (_P, _N, None), 2: (_N, _P, None),
    3: (_P, _P, "parallel"), 4: (_P, _P, "sequential"),
    5: (_I, _N, None), 6: (_N, _I, None),
    7: (_I, _P, "parallel"), 8: (_I, _P, "sequential"),
    9: (_P, _I, "parallel"), 10: (_P, _I, "sequential"),
    11: (_I, _I, "parallel"), 12: (_I, _I, "sequential"),
}


personality_fusion_choices = ClassChoices(
    name="personality_fusion", classes=dict(attention=PersonalityFusion),
    type_check=torch.nn.Module, default=None, optional=True)
