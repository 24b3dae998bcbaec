#!/usr/bin/env bash
# IEMOCAP: joint ASR + SER with 5-fold session cross-validation (the GST paper's setup).
#   ./run.sh --iemocap_root /data/IEMOCAP_full_release            # stages 1-6, all folds
#   ./run.sh --folds "1" --stage 4 --train_config conf/tuning/train_asr_ser_conformer_gst.yaml
# --iemocap_root and --folds are this script's; every other option goes to
# ../TEMPLATE/asr_ser.sh (see its --help). Stage 1 runs once; stages 2-6 run per fold, and
# stage 6 also writes the table across folds (mean and pooled) into RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")"

train_config=conf/train_asr_ser_conformer.yaml
decode_config=conf/decode.yaml
folds="1 2 3 4 5"
iemocap_root=
stop_stage=6
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --iemocap_root) iemocap_root=$2; shift 2 ;;
        --folds) folds=$2; shift 2 ;;
        --stop-stage|--stop_stage) stop_stage=$2; args+=("$1" "$2"); shift 2 ;;
        --help|-h)
            echo "Usage: $0 [--iemocap_root DIR] [--folds \"1 2 3 4 5\"] [options of ../TEMPLATE/asr_ser.sh]"
            exec ../TEMPLATE/asr_ser.sh --help ;;
        *) args+=("$1"); shift ;;
    esac
done
if [ -n "${iemocap_root}" ]; then export iemocap_root; fi

# --nbpe 5000 keeps nearly every training word whole (the paper's units were words); with
# --pretrained_dir the pretrained model's own sentencepiece model is used instead.
for k in ${folds}; do
    ../TEMPLATE/asr_ser.sh \
        --train_set fold${k}_train --valid_set fold${k}_valid --test_sets "fold${k}_test" \
        --suffix _fold${k} --feats_superset iemocap_all \
        --emotions "ang hap neu sad" --token_type bpe --nbpe 5000 \
        --train_config "${train_config}" --decode_config "${decode_config}" \
        --results_notes local/results_notes.md \
        "${args[@]}"
done

if [ "${stop_stage}" -ge 6 ]; then
    . ./path.sh
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh) Stage 6: table across folds ${folds} (log: exp/log/score_cv.log)"
    python3 -m espnet_ser.bin.score_cv --recipe_dir . --folds "${folds}" --emotions "ang hap neu sad" \
        > exp/log/score_cv.log 2>&1 || { echo "failed; see exp/log/score_cv.log"; exit 1; }
    python3 -m espnet_ser.bin.make_results --recipe_dir . --out RESULTS.md --notes local/results_notes.md \
        >> exp/log/score_cv.log 2>&1 || { echo "failed; see exp/log/score_cv.log"; exit 1; }
fi
