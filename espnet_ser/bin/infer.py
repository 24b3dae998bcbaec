"""Recognise words and emotion in wav files with an experiment directory or a packed model.

Prints one JSON object per utterance (utt, words, text, emotion, posterior)::

    python -m espnet_ser.bin.infer --exp_dir exp/asr_x --wav a.wav b.wav
    python -m espnet_ser.bin.infer --model_archive model.zip --wav_scp data/test/wav.scp \
        --output hyp.jsonl
"""

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from espnet_ser.utils.cli import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--exp_dir", type=Path, help="training experiment directory")
    src.add_argument("--model_archive", type=Path, help="archive made by espnet_ser.bin.pack_model")
    p.add_argument("--model_file", type=Path, default=None, help="with --exp_dir: model file to use")
    p.add_argument("--decode_config", type=Path, default=None, help="decoding YAML (overrides the stored one)")
    inp = p.add_mutually_exclusive_group(required=True)
    inp.add_argument("--wav", nargs="+", type=Path, help="wav files (the id is the file name stem)")
    inp.add_argument("--wav_scp", type=Path, help="Kaldi wav.scp")
    p.add_argument("--output", type=Path, default=None, help="JSON lines file (default: stdout)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--beam_size", type=int, default=None, help="override the beam size")
    return p


def load(args, workdir: Path):
    from espnet_ser.asr.inference import Speech2TextEmotion

    overrides = {} if args.beam_size is None else {"beam_size": args.beam_size}
    if args.exp_dir is not None:
        return Speech2TextEmotion.from_exp_dir(args.exp_dir, args.model_file, args.decode_config,
                                               device=args.device, **overrides)
    from espnet_ser.utils.packing import unpack_model

    files = unpack_model(args.model_archive, workdir)
    return Speech2TextEmotion.from_files(files["config"], files["model_file"],
                                         args.decode_config or files["decode_config"],
                                         device=args.device, **overrides)


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    from espnet_ser.features.audio import FeatureError, load_utterance
    from espnet_ser.utils.io import DataFileError, read_kaldi_map

    try:
        if args.wav_scp is not None:
            entries = [(u, w, f"{args.wav_scp}:{i}")
                       for i, (u, w) in enumerate(read_kaldi_map(args.wav_scp, check_sorted=False).items(), 1)]
        else:
            entries = [(p.stem, str(p), str(p)) for p in args.wav]
        with tempfile.TemporaryDirectory() as work:
            s2t = load(args, Path(work))
            out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
            try:
                for utt, wav, where in entries:
                    fs = s2t.fs or 16000
                    wave = load_utterance(utt, wav, where, fs)
                    best = s2t(s2t.features(wave, fs), s2t.style_features(wave, fs))[0]
                    out.write(json.dumps(dict(utt=utt, words=best.words, text=best.text,
                                              emotion=best.emotion, posterior=best.posterior)) + "\n")
                    out.flush()
            finally:
                if args.output:
                    out.close()
    except (OSError, ValueError, DataFileError, FeatureError) as e:
        logging.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
