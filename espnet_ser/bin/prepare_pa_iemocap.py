"""Write the PA-IEMOCAP Kaldi data directories of espnet_ser.data.pa_iemocap (pa_iemocap_all and
fold{1..5}_{train,valid,test}, with utt2personality, utt2dialog, utt2gender); exits 1 with
``ERROR: <file>:<line>: ...`` on a bad tree or a bad ocean.csv / tipi_labels.csv."""

from espnet_ser.data.pa_iemocap import prepare_pa_iemocap
from espnet_ser.data.prepare import corpus_parser, run_prepare


def get_parser():
    p = corpus_parser(
        "Prepare PA-IEMOCAP Kaldi data directories: the lexical IEMOCAP 4-class utterances "
        "with the speaker's and the listener's Big-Five traits; fold k: valid = the F part of "
        "session k, test = its M part, train = the other four sessions",
        "iemocap_root", "the IEMOCAP_full_release directory (holds Session1..Session5)",
        "where pa_iemocap_all and fold*_* go", "read every wav header and require 16 kHz mono")
    p.add_argument("--pa_iemocap_root", required=True,
                   help="the PA-IEMOCAP directory (holds ocean.csv and, optionally, "
                        "tipi_labels.csv, checked against it)")
    return p


def main(cmd=None) -> None:
    run_prepare(get_parser(), cmd, lambda a: prepare_pa_iemocap(
        a.iemocap_root, a.pa_iemocap_root, a.out_dir, check_audio=a.check_audio))


if __name__ == "__main__":
    main()
