#!/usr/bin/env bash
# PA-IEMOCAP: SER conditioned on the speaker's and the listener's Big-Five traits (the
# personality paper, Table 2), 5 folds: valid = the F part of session k, test = its M part,
# train = the other four sessions; through ../TEMPLATE/ser.sh, one call per fold.
#   ./run.sh --iemocap_root /data/IEMOCAP_full_release --pa_iemocap_root /data/PA-IEMOCAP
#   ./run.sh --train_config conf/tuning/train_ser_hubert_row4.yaml --folds "1 2"
#   ./run.sh --train_config conf/tuning/train_ser_hubert_row8.yaml --personality pred
#   local/run_paper.sh                     # the 13 rows with ground-truth and predicted traits
# Stage 1 runs once (data/pa_iemocap_all, data/fold{k}_{train,valid,test}); stages 2-6 run per
# fold into exp/ser_<config>_fold<k> (--personality pred: _fold<k>_pred). --personality:
#   gt:   validation and test sets with the ground-truth traits of ocean.csv;
#   pred: with predicted traits, data/fold<k>_{valid,test}_pred (utt2personality written by
#         the personality-recognition model; not in the toolkit yet); the training set keeps
#         the ground truth in both modes. Row 0 uses no traits: run it with gt only.
# Stage 6 then averages the folds (exp/ser_<config>_cv[_pred]/score/, the paper averages the
# five splits) and rewrites Table 2 of the rows run so far (exp/table2/table2.{txt,md,json}).
# The options below are this script's; every other option goes to ../TEMPLATE/ser.sh.
set -euo pipefail
cd "$(dirname "$0")"

# begin options
iemocap_root=              # IEMOCAP_full_release (default IEMOCAP in db.sh)
pa_iemocap_root=           # the directory of ocean.csv and tipi_labels.csv (default PA_IEMOCAP in db.sh)
folds="1 2 3 4 5"          # the folds to run (fold k: valid Ses0kF, test Ses0kM)
train_config=conf/tuning/train_ser_hubert_row8.yaml  # training YAML (a row of Table 2)
personality=gt             # traits of the validation and test sets: gt or pred (see above)
stop_stage=6               # last stage to run (6: also the folds' mean and Table 2)
# end options
help_message="Usage: $0 [options] [options of ../TEMPLATE/ser.sh]"
pass_to=../TEMPLATE/ser.sh
. ./path.sh
. "${ESPNET_SER_ROOT}/tools/parse_options.sh"
# shellcheck source=egs/TEMPLATE/common.sh
. ../TEMPLATE/common.sh
if [ -n "${iemocap_root}" ]; then export iemocap_root; fi
if [ -n "${pa_iemocap_root}" ]; then export pa_iemocap_root; fi
case ${personality} in
    gt) p= ;;
    pred) p=_pred ;;
    *) echo "$0: --personality must be gt or pred, got ${personality}" >&2; exit 2 ;;
esac
name=ser_$(basename "${train_config}" .yaml)

for k in ${folds}; do
    if [ -n "${p}" ]; then
        for s in valid test; do
            [ -f "data/fold${k}_${s}${p}/utt2personality" ] || {
                echo "$0: --personality pred: data/fold${k}_${s}${p}/utt2personality is missing (the predicted traits of fold ${k})" >&2; exit 2; }
        done
    fi
    ../TEMPLATE/ser.sh \
        --train_set "fold${k}_train" --valid_set "fold${k}_valid${p}" --test_sets "fold${k}_test${p}" \
        --suffix "_fold${k}${p}" --feats_superset pa_iemocap_all --feats_type raw \
        --emotions "ang hap neu sad" --train_config "${train_config}" \
        --results_notes local/results_notes.md --stop_stage "${stop_stage}" "${pass_args[@]}"
done

if [ "${stop_stage}" -ge 6 ]; then
    out=exp/${name}_cv${p}/score
    mkdir -p "${out}" exp/table2
    log "Stage 6: the folds ${folds} of ${name}${p} (log: ${out}/score_cv.log)"
    # shellcheck disable=SC2046
    py_step "${out}/score_cv.log" score_ser_cv --outdir "${out}" \
        --score_dirs $(for k in ${folds}; do ls -d exp/${name}_fold${k}${p}/decode_*/fold${k}_test${p}/score; done)
    log "Stage 6: Table 2 of the rows run so far -> exp/table2/table2.txt"
    py_step exp/table2/table2.log personality_table --exp_dir exp --out_dir exp/table2
    cat "${out}/result.txt" exp/table2/table2.txt
fi
