#!/usr/bin/env bash
# IEMOCAP: multi-task SER (wav2vec 2.0 + emotion head + auxiliary character CTC) with the
# 10-fold leave-one-speaker-out protocol of the multi-task paper, through ../TEMPLATE/ser.sh.
#   ./run_ser.sh --iemocap_root /data/IEMOCAP_full_release          # alpha 0.1, all ten folds
#   ./run_ser.sh --train_config conf/tuning/train_ser_w2v2_base_mtl_alpha0.yaml --folds "1 2"
# Fold k tests on speaker k in the order Ses01F Ses01M ... Ses05M, validates on the other
# speaker of the same session and trains on the remaining eight (data/loso{k}_*; see
# espnet_ser.data.iemocap). Stage 1 runs once; stages 2-6 run per fold. Stage 6 then pools
# the ten folds: accuracy = correct predictions of all folds / all utterances (the paper's
# eq. 4), UA of the pooled predictions, and the WER of the CTC transcript per fold and its
# mean over folds (eq. 5), in exp/ser_<config>_loso/score/ and RESULTS.md.
# --iemocap_root and --folds are this script's; every other option goes to ../TEMPLATE/ser.sh.
set -euo pipefail
cd "$(dirname "$0")"

train_config=conf/train_ser.yaml
folds="1 2 3 4 5 6 7 8 9 10"
iemocap_root=
stop_stage=6
emotions="ang hap neu sad"
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --iemocap_root) iemocap_root=$2; shift 2 ;;
        --folds) folds=$2; shift 2 ;;
        --train_config) train_config=$2; shift 2 ;;
        --stop-stage|--stop_stage) stop_stage=$2; args+=("$1" "$2"); shift 2 ;;
        --help|-h)
            echo "Usage: $0 [--iemocap_root DIR] [--folds \"1 ... 10\"] [options of ../TEMPLATE/ser.sh]"
            exec ../TEMPLATE/ser.sh --help ;;
        *) args+=("$1"); shift ;;
    esac
done
if [ -n "${iemocap_root}" ]; then export iemocap_root; fi

for k in ${folds}; do
    ../TEMPLATE/ser.sh \
        --train_set loso${k}_train --valid_set loso${k}_valid --test_sets "loso${k}_test" \
        --suffix _loso${k} --feats_superset iemocap_all --feats_type raw \
        --emotions "${emotions}" --train_config "${train_config}" \
        --results_notes local/results_notes.md \
        "${args[@]}"
done

if [ "${stop_stage}" -ge 6 ]; then
    . ./path.sh
    name=ser_$(basename "${train_config}" .yaml)
    out=exp/${name}_loso/score
    mkdir -p "${out}"
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (run_ser.sh) Stage 6: pooling folds ${folds} (log: ${out}/score_cv.log)"
    python3 -m espnet_ser.bin.score_ser_cv --outdir "${out}" \
        --score_dirs $(for k in ${folds}; do ls -d exp/${name}_loso${k}/decode_*/loso${k}_test/score; done) \
        > "${out}/score_cv.log" 2>&1 || { echo "failed; see ${out}/score_cv.log"; exit 1; }
    python3 -m espnet_ser.bin.make_results --recipe_dir . --out RESULTS.md --notes local/results_notes.md \
        >> "${out}/score_cv.log" 2>&1 || { echo "failed; see ${out}/score_cv.log"; exit 1; }
    cat "${out}/result.txt"
fi
