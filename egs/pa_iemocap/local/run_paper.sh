#!/usr/bin/env bash
# Table 2 of the personality paper: the 13 rows (conf/tuning/train_ser_hubert_row{0..12}.yaml)
# over the 5 folds with ground-truth traits, then rows 1-12 with predicted traits (row 0 uses
# none). The predicted traits must be in data/fold<k>_{valid,test}_pred/utt2personality
# before the Pred runs; without them only the GT runs are made. Table 2 is rewritten after
# every row: exp/table2/table2.{txt,md,json}.
#   local/run_paper.sh [--ngpu 1] [--iemocap_root DIR --pa_iemocap_root DIR] [--folds "1 2"]
# Options given here go to every ./run.sh call.
set -euo pipefail
cd "$(dirname "$0")/.."
for row in 0 1 2 3 4 5 6 7 8 9 10 11 12; do
    ./run.sh --train_config conf/tuning/train_ser_hubert_row${row}.yaml "$@"
done
if ! ls data/fold*_test_pred/utt2personality > /dev/null 2>&1; then
    echo "$0: no data/fold<k>_{valid,test}_pred sets (predicted traits): the Pred runs are skipped" >&2
    exit 0
fi
for row in 1 2 3 4 5 6 7 8 9 10 11 12; do
    ./run.sh --train_config conf/tuning/train_ser_hubert_row${row}.yaml --personality pred --stage 2 "$@"
done
