"""Write the RAVDESS speech Kaldi data directories of espnet_ser.data.ravdess (wav.scp
lists the 48 kHz originals); exits 1 with ``ERROR: <file>: ...`` on a bad corpus tree."""

from espnet_ser.data.prepare import corpus_parser, run_prepare
from espnet_ser.data.ravdess import DEFAULT_SEED, DEFAULT_TEST_FRACTION, prepare_ravdess


def get_parser():
    p = corpus_parser("Prepare RAVDESS speech Kaldi data directories", "ravdess_root",
                      "the Audio_Speech_Actors_01-24 directory (holds Actor_01..Actor_24)",
                      "where the data directories go", "read every wav header and require 48 kHz")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help="seed of the random (emotion-stratified) split")
    p.add_argument("--test_fraction", type=float, default=DEFAULT_TEST_FRACTION,
                   help="share of each emotion put in random_test")
    return p


def main(cmd=None) -> None:
    run_prepare(get_parser(), cmd, lambda a: prepare_ravdess(
        a.ravdess_root, a.out_dir, seed=a.seed, test_fraction=a.test_fraction,
        check_audio=a.check_audio))


if __name__ == "__main__":
    main()
