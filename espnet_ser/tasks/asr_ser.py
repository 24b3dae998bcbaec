"""``ASRSERTask``: ESPnet's ASR task with ``model: asr_ser``, ``encoder: gst_conformer`` and
``style_encoder: gst | oracle`` registered (``python -m espnet_ser.bin.asr_ser_train``)."""

import argparse
import logging
from typing import Tuple

from espnet_ser.utils.offline import quiet_nltk_downloads

quiet_nltk_downloads()

import espnet2.tasks.asr as espnet_asr  # noqa: E402
from espnet2.asr.ctc import CTC
from espnet2.tasks.asr import (ASRTask, decoder_choices, frontend_choices, normalize_choices,
                               postencoder_choices, preencoder_choices, preprocessor_choices,
                               specaug_choices)
from espnet2.torch_utils.initialize import initialize
from espnet2.train.class_choices import ClassChoices
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.asr.encoder.abs_encoder import AbsEncoder

from espnet_ser.asr.encoder.gst_conformer_encoder import GSTConformerEncoder
from espnet_ser.asr.espnet_model import ESPnetASRSERModel
from espnet_ser.asr.gst import GSTEncoder
from espnet_ser.asr.style import AbsStyleEncoder, OracleEmotionStyle
from espnet_ser.train.scheduler import register_schedulers
from espnet_ser.tasks.registry import build_choice, build_frontend, extend_choices
from espnet_ser.train.trainer import ToolkitTrainer
from espnet_ser.utils.safe_load import build_model_from_file as safe_build_model_from_file

model_choices = extend_choices(espnet_asr.model_choices, default="asr_ser",
                               asr_ser=ESPnetASRSERModel)
encoder_choices = extend_choices(espnet_asr.encoder_choices, gst_conformer=GSTConformerEncoder)
register_schedulers()
style_encoder_choices = ClassChoices(name="style_encoder",
                                     classes=dict(gst=GSTEncoder, oracle=OracleEmotionStyle),
                                     type_check=AbsStyleEncoder, default=None, optional=True)


class ASRSERTask(ASRTask):
    """Joint speech and emotion recognition on ESPnet's ASR task."""

    trainer = ToolkitTrainer

    class_choices_list = [frontend_choices, specaug_choices, normalize_choices, model_choices,
                          preencoder_choices, encoder_choices, postencoder_choices,
                          decoder_choices, preprocessor_choices, style_encoder_choices]

    # ESPnet's loader with safe YAML, torch.load(weights_only=True) and strict loading
    build_model_from_file = classmethod(safe_build_model_from_file)

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        # the inputs of the style encoders (see espnet_ser.asr.style)
        names = super().optional_data_names(train, inference)
        return tuple(names) + ("style_speech", "emotion")

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> AbsESPnetModel:
        if isinstance(args.token_list, str):
            with open(args.token_list, encoding="utf-8") as f:  # as ESPnet's ASRTask reads it
                args.token_list = [line.rstrip() for line in f]
        token_list = list(args.token_list)
        vocab_size = len(token_list)
        logging.info(f"Vocabulary size: {vocab_size}")

        frontend, input_size = build_frontend(args, frontend_choices)
        specaug = build_choice(args, specaug_choices)
        normalize = build_choice(args, normalize_choices)
        preencoder = build_choice(args, preencoder_choices)
        if preencoder is not None:
            input_size = preencoder.output_size()
        style_encoder = build_choice(args, style_encoder_choices)
        if style_encoder is not None:
            if not getattr(encoder_choices.get_class(args.encoder), "accepts_style", False):
                raise ValueError(f"style_encoder: {args.style_encoder} needs a style-conditioned "
                                 f"encoder (encoder: gst_conformer), not encoder: {args.encoder}")
            args.encoder_conf = dict(args.encoder_conf or {})
            given = args.encoder_conf.setdefault("style_dim", style_encoder.output_size())
            if given != style_encoder.output_size():
                raise ValueError(f"encoder_conf.style_dim={given} but the style encoder gives "
                                 f"{style_encoder.output_size()}-dim styles")
        elif getattr(args, "encoder", None) == "gst_conformer":
            # no style source: the conditioning stays unused (a plain conformer)
            args.encoder_conf = dict(args.encoder_conf or {})
            args.encoder_conf.setdefault("style_dim", 1)
        encoder = build_choice(args, encoder_choices, input_size=input_size)
        if not isinstance(encoder, AbsEncoder):
            raise ValueError("ASRSERTask needs an encoder")
        enc_size = encoder.output_size()
        postencoder = build_choice(args, postencoder_choices, input_size=enc_size)
        if postencoder is not None:
            enc_size = postencoder.output_size()
        if getattr(args, "decoder", None) == "transducer":
            raise ValueError("ASRSERTask decodes with an attention decoder; use ESPnet's "
                             "ASRTransducerTask for transducers")
        decoder = build_choice(args, decoder_choices, vocab_size=vocab_size,
                               encoder_output_size=enc_size)
        ctc = CTC(odim=vocab_size, encoder_output_size=enc_size, **args.ctc_conf)

        model_class = model_choices.get_class(getattr(args, "model", None) or "asr_ser")
        extra = {}
        if style_encoder is not None:
            if not issubclass(model_class, ESPnetASRSERModel):
                raise ValueError(f"style_encoder needs model: asr_ser, not model: {args.model}")
            extra["style_encoder"] = style_encoder
        model = model_class(vocab_size=vocab_size, frontend=frontend, specaug=specaug,
                            normalize=normalize, preencoder=preencoder, encoder=encoder,
                            postencoder=postencoder, decoder=decoder, ctc=ctc,
                            joint_network=None, token_list=token_list, **extra,
                            **args.model_conf)
        if args.init is not None:
            initialize(model, args.init)
        return model
