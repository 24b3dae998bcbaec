"""ESPnet's joint CTC/attention beam search with an emotion posterior at the hypothesis's
emotion token: softmax of ``(1 - λ) log p_att(e | prefix, x) + λ log p_ctc(prefix + e | x)``."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import yaml

from espnet_ser.data.datadir import emotion_of_token
from espnet_ser.utils.jobs import MODEL_FILE_PREFERENCE, experiment_files, find_model_file  # noqa: F401

PathLike = Union[str, Path]
_EMO_RE = re.compile(r"(<[a-z]{3}>)")
DECODE_DEFAULTS = dict(beam_size=10, ctc_weight=0.3, penalty=0.0, maxlenratio=0.0,
                       minlenratio=0.0, nbest=1, normalize_length=False)
STYLE_FEATS_CONFIG = "gst_feats_config.yaml"


@dataclass
class Recognition:
    text: str  # hypothesis with the emotion token, as decoded
    words: str  # hypothesis without emotion tokens
    emotion: Optional[str]  # emotion code of the emitted token (None if none was emitted)
    posterior: Dict[str, float] = field(default_factory=dict)  # over emotion codes
    tokens: List[str] = field(default_factory=list)
    score: float = 0.0


def decode_options(given: Dict, where: str = "") -> Dict:
    """``DECODE_DEFAULTS`` updated with ``given``; unknown options are a ValueError."""
    unknown = sorted(set(given) - set(DECODE_DEFAULTS))
    if unknown:
        raise ValueError(f"{where}unknown decoding option(s) {unknown}; "
                         f"known: {sorted(DECODE_DEFAULTS)}")
    return dict(DECODE_DEFAULTS, **given)


def load_decode_config(path: Optional[PathLike]) -> Dict:
    if path is None:
        return dict(DECODE_DEFAULTS)
    with open(path, encoding="utf-8") as f:
        return decode_options(yaml.safe_load(f) or {}, f"{path}: ")


class Speech2TextEmotion:
    """Recognise words and emotion from features or waveforms."""

    def __init__(self, asr_train_config: PathLike, asr_model_file: Optional[PathLike] = None,
                 feats_config: Optional[PathLike] = None, device: str = "cpu",
                 dtype: str = "float32", style_feats_config: Optional[PathLike] = None,
                 **decode_conf):
        from espnet.nets.batch_beam_search import BatchBeamSearch
        from espnet.nets.scorers.ctc import CTCPrefixScorer
        from espnet.nets.scorers.length_bonus import LengthBonus
        from espnet2.text.build_tokenizer import build_tokenizer
        from espnet2.text.token_id_converter import TokenIDConverter

        from espnet_ser.tasks.asr_ser import ASRSERTask

        self.conf = conf = decode_options(decode_conf)
        self.device = device
        model, train_args = ASRSERTask.build_model_from_file(asr_train_config, asr_model_file, device)
        model.to(dtype=getattr(torch, dtype)).eval()
        self.model, self.train_args = model, train_args
        self.token_list = token_list = list(model.token_list)

        self.ctc_weight = ctc_weight = float(conf["ctc_weight"])
        scorers = dict(decoder=model.decoder, ctc=CTCPrefixScorer(ctc=model.ctc, eos=model.eos),
                       length_bonus=LengthBonus(len(token_list)))
        weights = dict(decoder=1.0 - ctc_weight, ctc=ctc_weight, length_bonus=conf["penalty"])
        self.beam_search = BatchBeamSearch(
            scorers=scorers, weights=weights, beam_size=int(conf["beam_size"]),
            vocab_size=len(token_list), sos=model.sos, eos=model.eos, token_list=token_list,
            pre_beam_score_key=None if ctc_weight == 1.0 else "full",
            normalize_length=bool(conf["normalize_length"]))
        self.beam_search.to(device=device, dtype=getattr(torch, dtype)).eval()

        self.tokenizer = build_tokenizer(
            token_type=train_args.token_type,
            bpemodel=train_args.bpemodel,
            non_linguistic_symbols=getattr(train_args, "non_linguistic_symbols", None),
        )
        self.converter = TokenIDConverter(token_list=token_list)
        self.emo_ids = [i for i, t in enumerate(token_list) if emotion_of_token(t) is not None]
        self.emo_codes = [emotion_of_token(token_list[i]) for i in self.emo_ids]

        from espnet_ser.features.fbank import FbankExtractor

        self.extractor = self.style_extractor = None
        if model.frontend is None and feats_config is not None:
            self.extractor = FbankExtractor.from_yaml(feats_config)
        self.fs = self.extractor.fs if self.extractor is not None else None
        if style_feats_config is not None and self.style_input_name == "style_speech":
            self.style_extractor = FbankExtractor.from_yaml(style_feats_config)  # GST log-mel

    @classmethod
    def from_exp_dir(cls, exp_dir: PathLike, model_file: Optional[PathLike] = None,
                     decode_config: Optional[PathLike] = None, device: str = "cpu",
                     **overrides) -> "Speech2TextEmotion":
        """Load ``exp_dir/config.yaml`` with its averaged model, feature and decode configs."""
        config, model_file = experiment_files(exp_dir, model_file)
        if decode_config is None and (config.parent / "decode.yaml").is_file():
            decode_config = config.parent / "decode.yaml"
        return cls.from_files(config, model_file, decode_config, device, **overrides)

    @classmethod
    def from_files(cls, config: PathLike, model_file: PathLike,
                   decode_config: Optional[PathLike] = None, device: str = "cpu",
                   **overrides) -> "Speech2TextEmotion":
        conf = dict(load_decode_config(decode_config), **overrides)
        feats, style_feats = (Path(config).parent / name
                              for name in ("feats_config.yaml", STYLE_FEATS_CONFIG))
        return cls(config, model_file, feats_config=feats if feats.is_file() else None,
                   style_feats_config=style_feats if style_feats.is_file() else None,
                   device=device, **conf)

    def features(self, wave: np.ndarray, fs: Optional[int] = None) -> np.ndarray:
        """Model input for a waveform: dumped-style filterbanks or the raw samples."""
        if self.extractor is None:
            if self.model.frontend is None:
                raise ValueError("this model reads dumped features and its experiment has no "
                                 "feats_config.yaml; pass features instead of a waveform")
            return np.asarray(wave, dtype=np.float32)
        if fs is not None and fs != self.fs:
            raise ValueError(f"sample rate {fs} Hz, but the model's features expect {self.fs} Hz")
        return self.extractor(np.asarray(wave, dtype=np.float32))

    def style_features(self, wave: np.ndarray, fs: Optional[int] = None) -> Optional[np.ndarray]:
        """The GST log-mel of a waveform (None for models without a GST style source)."""
        if self.style_input_name != "style_speech":
            return None
        if self.style_extractor is None:
            raise ValueError(f"this model reads GST features and its experiment has no "
                             f"{STYLE_FEATS_CONFIG}; pass the GST features instead of a waveform")
        if fs is not None and fs != self.style_extractor.fs:
            raise ValueError(f"sample rate {fs} Hz, but the GST features expect {self.style_extractor.fs} Hz")
        return self.style_extractor(np.asarray(wave, dtype=np.float32))

    @property
    def style_input_name(self) -> Optional[str]:
        """Data key of the model's style source: ``style_speech``, ``emotion`` or None."""
        return getattr(self.model, "style_input_name", None)

    def style(self, style_input) -> Optional[torch.Tensor]:
        """Style vector (1, D) of one utterance (None for models without a style source)."""
        name = self.style_input_name
        if name is None:
            return None
        if style_input is None:
            what = ("the GST log-mel features of the utterance" if name == "style_speech"
                    else "the reference emotion id (oracle conditioning)")
            raise ValueError(f"this model is conditioned on '{name}': pass {what}")
        x = torch.as_tensor(np.asarray(style_input), device=self.device)
        if name == "style_speech":
            x = x.to(torch.float32)
        x = x.reshape(1, -1) if x.dim() <= 1 and name == "emotion" else x.unsqueeze(0)
        lengths = torch.tensor([x.size(1)], dtype=torch.long, device=self.device)
        return self.model.style_encoder(x, lengths)

    @torch.no_grad()
    def __call__(self, speech: Union[np.ndarray, torch.Tensor], style_input=None) -> List[Recognition]:
        """N-best list of one utterance; ``style_input``: GST log-mel or the oracle emotion id."""
        speech = torch.as_tensor(np.asarray(speech), dtype=torch.float32, device=self.device)[None]
        lengths = torch.tensor([speech.size(1)], dtype=torch.long, device=self.device)
        style = self.style(style_input)  # None: a model without a style source
        enc, _ = self.model.encode(speech, lengths, **({} if style is None else {"style": style}))
        x = (enc[0] if isinstance(enc, tuple) else enc)[0]
        hyps = self.beam_search(x=x, maxlenratio=float(self.conf["maxlenratio"]),
                                minlenratio=float(self.conf["minlenratio"]))
        results = []
        for hyp in hyps[: int(self.conf["nbest"])]:
            token_ids = [t for t in hyp.yseq.tolist()[1:] if t != self.model.eos]
            tokens = self.converter.ids2tokens(token_ids)
            text = self.tokenizer.tokens2text(tokens)
            # emotion tokens are units: keep them apart from the neighbouring words
            text = " ".join(_EMO_RE.sub(r" \1 ", text).split())
            words = " ".join(w for w in text.split() if emotion_of_token(w) is None)
            emotion, posterior = None, {}
            positions = [k for k, t in enumerate(token_ids) if t in self.emo_ids]
            if positions:
                k = positions[-1]
                posterior = self.emotion_posterior(x, token_ids[:k])
                emotion = self.emo_codes[self.emo_ids.index(token_ids[k])]
            results.append(Recognition(text=text, words=words, emotion=emotion, posterior=posterior,
                                       tokens=tokens, score=float(hyp.score)))
        return results

    @torch.no_grad()
    def emotion_posterior(self, enc: torch.Tensor, prefix: Sequence[int]) -> Dict[str, float]:
        """Posterior over emotion tokens after ``prefix`` (token ids without <sos>)."""
        from espnet.nets.ctc_prefix_score import CTCPrefixScore

        ys = torch.tensor([self.model.sos] + list(prefix), dtype=torch.long, device=enc.device)
        att_logp, _ = self.model.decoder.score(ys, None, enc)
        score = (1.0 - self.ctc_weight) * att_logp[self.emo_ids].float().cpu().numpy()
        if self.ctc_weight > 0:
            logp = self.model.ctc.log_softmax(enc.unsqueeze(0))[0].float().cpu().numpy()
            ctc = CTCPrefixScore(logp, self.model.blank_id, self.model.eos, np)
            state = ctc.initial_state()
            y = [self.model.sos]
            for tok in prefix:  # advance the CTC state along the emitted prefix
                _, states = ctc(y, np.array([tok]), state)
                state = states[0]
                y.append(tok)
            psi, _ = ctc(y, np.array(self.emo_ids), state)
            score = score + self.ctc_weight * psi
        prob = np.exp(score - score.max())
        prob /= prob.sum()
        return {code: float(p) for code, p in zip(self.emo_codes, prob)}
