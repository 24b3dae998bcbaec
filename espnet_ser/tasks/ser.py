"""``SERTask``: utterance-level speech emotion recognition (data ``speech``, ``emotion``, for
the CTC head ``text``, for a personality fusion ``personality``) with ``encoder``,
``personality_fusion``, ``pooling`` and ``classifier`` choices."""

import argparse
import logging
from typing import Callable, Collection, Dict, List, Optional, Tuple

import numpy as np
import torch

from espnet_ser.utils.offline import quiet_nltk_downloads

quiet_nltk_downloads()

import espnet2.tasks.asr as espnet_asr  # noqa: E402
from espnet2.asr.ctc import CTC  # noqa: E402
from espnet2.asr.encoder.abs_encoder import AbsEncoder  # noqa: E402
from espnet2.tasks.abs_task import AbsTask  # noqa: E402
from espnet2.torch_utils.initialize import initialize  # noqa: E402
from espnet2.train.abs_espnet_model import AbsESPnetModel  # noqa: E402
from espnet2.train.class_choices import ClassChoices  # noqa: E402
from espnet2.train.collate_fn import CommonCollateFn  # noqa: E402
from espnet2.train.preprocessor import CommonPreprocessor  # noqa: E402
from espnet2.utils.get_default_kwargs import get_default_kwargs  # noqa: E402
from espnet2.utils.nested_dict_action import NestedDictAction  # noqa: E402
from espnet2.utils.types import int_or_none, str2bool, str_or_none  # noqa: E402

from espnet_ser.ser.espnet_model import ESPnetSERModel
from espnet_ser.ssl.encoder import SSLEncoder  # noqa: E402
from espnet_ser.ser.heads import classifier_choices, pooling_choices  # noqa: E402
from espnet_ser.ser.personality import personality_fusion_choices  # noqa: E402
from espnet_ser.train.scheduler import register_schedulers  # noqa: E402
from espnet_ser.data.datadir import parse_emotions  # noqa: E402
from espnet_ser.tasks.registry import build_choice, build_frontend, extend_choices  # noqa: E402
from espnet_ser.train.trainer import ToolkitTrainer  # noqa: E402
from espnet_ser.utils.io import read_token_list  # noqa: E402
from espnet_ser.utils.safe_load import build_model_from_file as safe_build_model_from_file  # noqa: E402


frontend_choices = extend_choices(espnet_asr.frontend_choices)
specaug_choices = extend_choices(espnet_asr.specaug_choices)
normalize_choices = extend_choices(espnet_asr.normalize_choices)
encoder_choices = extend_choices(espnet_asr.encoder_choices, ssl=SSLEncoder)
register_schedulers()
model_choices = ClassChoices(name="model", classes=dict(ser=ESPnetSERModel),
                             type_check=AbsESPnetModel, default="ser")


def check_personality_data(args: argparse.Namespace) -> None:
    """Refuse training a personality fusion on data options without ``personality``."""
    for key in ("train_data_path_and_name_and_type", "valid_data_path_and_name_and_type"):
        entries = getattr(args, key, None) or []
        if entries and "personality" not in [entry[1] for entry in entries]:
            raise ValueError(
                f"the config fuses personalities (personality_fusion: {args.personality_fusion}) "
                f"but --{key} gives no 'personality': add "
                f"data/<set>/utt2personality,personality,text_float")


class SERTask(AbsTask):
    """Speech emotion recognition: encoder, pooling and classifier, optional CTC."""

    num_optimizers: int = 1

    class_choices_list = [frontend_choices, specaug_choices, normalize_choices, model_choices,
                          encoder_choices, personality_fusion_choices, pooling_choices,
                          classifier_choices]

    trainer = ToolkitTrainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="Task related")
        parser.get_default("required").append("emotions")
        add = group.add_argument
        add("--emotions", type=str, nargs="+", default=None,
            help="Emotion class codes in class-index order, e.g. ang hap neu sad")
        add("--token_list", type=str_or_none, default=None,
            help="Character vocabulary of the CTC head (file, one token a line; index 0 is the "
            "blank)")
        add("--init", type=lambda x: str_or_none(x.lower()), default=None,
            help="The initialization method",
            choices=["chainer", "xavier_uniform", "xavier_normal", "kaiming_uniform",
                     "kaiming_normal", "normal", None])
        add("--input_size", type=int_or_none, default=None,
            help="Feature dimension of the input (no frontend); None: use the frontend")
        add("--ctc_conf", action=NestedDictAction, default=get_default_kwargs(CTC),
            help="The keyword arguments for the CTC class")
        group = parser.add_argument_group(description="Preprocess related")
        group.add_argument("--use_preprocessor", type=str2bool, default=True,
                           help="Tokenize 'text' with the token list (when one is given)")
        group.add_argument("--token_type", type=str, default="char", choices=["char"],
                           help="Tokenization of 'text' for the CTC head")
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool
                         ) -> Callable[[Collection[Tuple[str, Dict[str, np.ndarray]]]],
                                       Tuple[List[str], Dict[str, torch.Tensor]]]:
        # -1 pads integer sequences (0 is the CTC blank)
        return CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool
                            ) -> Optional[Callable[[str, Dict[str, np.array]], Dict]]:
        if not getattr(args, "use_preprocessor", False) or args.token_list is None:
            return None
        return CommonPreprocessor(train=train, token_type=args.token_type,
                                  token_list=args.token_list, text_name="text")

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("speech",) if inference else ("speech", "emotion")

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("text", "emotion", "personality") if inference else ("text", "personality")

    # ESPnet's loader with safe YAML, torch.load(weights_only=True) and strict loading
    build_model_from_file = classmethod(safe_build_model_from_file)

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> AbsESPnetModel:
        args.emotions = emotions = parse_emotions(getattr(args, "emotions", None))  # as a list
        if not emotions:
            raise ValueError("--emotions is required (class codes in class-index order)")
        # the token list itself is kept in the config: the model file is portable
        args.token_list = token_list = read_token_list(getattr(args, "token_list", None))

        frontend, input_size = build_frontend(args, frontend_choices)
        specaug = build_choice(args, specaug_choices)
        normalize = build_choice(args, normalize_choices)
        encoder = build_choice(args, encoder_choices, input_size=input_size)
        if not isinstance(encoder, AbsEncoder):
            raise ValueError("SERTask needs an encoder")
        resolved = getattr(encoder, "normalize_waveform", None)
        if isinstance(resolved, bool):
            # config.yaml (written after build_model) keeps the decision taken from the
            # checkpoint, so decoding elsewhere cannot resolve it differently
            args.encoder_conf = dict(getattr(args, "encoder_conf", None) or {},
                                     normalize_waveform=resolved)
        source = f"the encoder ({getattr(encoder, 'model_id', None) or args.encoder})"
        fusion = build_choice(args, personality_fusion_choices, source,
                              input_size=encoder.output_size())
        if fusion is not None:
            check_personality_data(args)
        pooling = build_choice(args, pooling_choices, source, input_size=encoder.output_size())
        classifier = build_choice(args, classifier_choices, source,
                                  input_size=pooling.output_size(), num_classes=len(emotions))

        model_conf = dict(getattr(args, "model_conf", None) or {})
        for key in ("ctc", "emotions", "token_list", "num_classes"):
            # set by the task; --print_config lists some of them as null
            if model_conf.pop(key, None) is not None:
                raise ValueError(f"model_conf.{key} is set by the task, not the config")
        ctc = None
        if float(model_conf.get("ctc_weight", 0.0)) > 0:
            if not token_list:
                raise ValueError("ctc_weight > 0 needs --token_list (character vocabulary)")
            ctc = CTC(odim=len(token_list), encoder_output_size=encoder.output_size(),
                      **(getattr(args, "ctc_conf", None) or {}))
            logging.info(f"CTC head over {len(token_list)} tokens")

        model_class = model_choices.get_class(getattr(args, "model", None) or "ser")
        model = model_class(num_classes=len(emotions), frontend=frontend, specaug=specaug,
                            normalize=normalize, encoder=encoder, pooling=pooling,
                            classifier=classifier, ctc=ctc, emotions=emotions,
                            token_list=token_list, personality_fusion=fusion, **model_conf)
        if getattr(args, "init", None) is not None:
            initialize(model, args.init)
        return model
