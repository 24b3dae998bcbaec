#!/usr/bin/env bash
# Every experiment of the GST paper (Kyung et al.) on IEMOCAP, 5-fold session CV each.
#   local/run_paper.sh --pretrained_dir exp/pretrained_gigaspeech [--ngpu 1] [--iemocap_root DIR]
#   local/run_paper.sh --experiments "baseline blocks" --blocks "0 11" ...   # a part of them
# Prerequisites (see README.md): the GigaSpeech conformer extended with the emotion tokens
# (espnet_ser.bin.extend_pretrained) and, for "P.T. GSTs", a converted GST-Tacotron
# checkpoint at exp/gst_tacotron/gst.pth (espnet_ser.bin.convert_gst_tacotron).
# Options of this script (the list below): --experiments runs, always in this order,
# baseline oracle gst ptgst (Tables 1-2), front ptgst_front (Table 4), blocks (Figure 3),
# ctc0.7 (the other reading of alpha); --blocks counts from 0 (the paper counts 1..12);
# --ptgst_feats_config defaults to GST-Tacotron's normalisation (the toolkit's conf/).
# Every other option goes to every ./run.sh call, before the run's own options. Tables 3
# and 5 (WER without the emotion token) need no run: stage 6 scores every decode with and
# without it. Each run's stages are skipped once done, so the script can be re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

# begin options
experiments="baseline oracle gst ptgst front ptgst_front blocks ctc0.7"  # which runs (see above)
blocks="0 1 2 3 4 5 6 7 8 9 10 11"  # the blocks of Figure 3 (0-based cond_layers)
ptgst_feats_config=        # the pretrained GST's input features (default: conf/fbank_gst_tacotron.yaml)
asr_args=                  # training options for every run (a run's own come after them)
stop_stage=6               # last stage to run
# end options
help_message="Usage: $0 [options] [options of ./run.sh]"
pass_to=./run.sh
. ./path.sh
. "${ESPNET_SER_ROOT}/tools/parse_options.sh"
# shellcheck source=egs/TEMPLATE/common.sh
. ../TEMPLATE/common.sh
[ -n "${ptgst_feats_config}" ] || ptgst_feats_config=${ESPNET_SER_ROOT}/conf/fbank_gst_tacotron.yaml
tuning=conf/tuning
for e in ${experiments}; do
    case ${e} in
        baseline|oracle|gst|ptgst|front|ptgst_front|blocks|ctc0.7) ;;
        *) echo "$0: unknown experiment '${e}' (baseline oracle gst ptgst front ptgst_front blocks ctc0.7)"; exit 2 ;;
    esac
done
selected() { [[ " ${experiments} " == *" $1 "* ]]; }
# run "EXTRA ASR ARGS" OPTION...: one experiment over the folds
run() {
    local extra=$1; shift
    ./run.sh --stop_stage "${stop_stage}" "${pass_args[@]}" --asr_args "${asr_args}${extra:+ ${extra}}" "$@"
}
ptgst=(--train_config "${tuning}/train_asr_ser_conformer_ptgst.yaml" --gst_feats_config "${ptgst_feats_config}")

# Tables 1 and 2: baseline, oracle emotion labels, GST, pretrained GST (token at the end)
if selected baseline; then run "" --train_config ${tuning}/train_asr_ser_conformer.yaml; fi
if selected oracle; then run "" --train_config ${tuning}/train_asr_ser_conformer_oracle.yaml; fi
if selected gst; then run "" --train_config ${tuning}/train_asr_ser_conformer_gst.yaml; fi
if selected ptgst; then run "" "${ptgst[@]}"; fi
# Table 4: the emotion token in front of the transcript (baseline and pretrained GST)
if selected front; then run "" --train_config ${tuning}/train_asr_ser_conformer.yaml --emo_token_position front; fi
if selected ptgst_front; then run "" "${ptgst[@]}" --emo_token_position front; fi
# Figure 3: conditioning one encoder block k only, then WER and UA against the block
if selected blocks; then
    for k in ${blocks}; do
        run "--encoder_conf cond_layers=[${k}]" "${ptgst[@]}" --exp_tag _block${k}
    done
    if [ "${stop_stage}" -ge 6 ]; then
        mkdir -p exp/log
        log "Figure 3: WER and UA against the block (log: exp/log/block_sweep.log)"
        py_step exp/log/block_sweep.log plot_block_sweep --recipe_dir . --base asr_train_asr_ser_conformer_ptgst
    fi
fi
# The other reading of the paper's alpha = 0.3 (equation 1 puts it on the attention term):
# 0.3 on attention = ESPnet ctc_weight 0.7, in training and in decoding.
if selected ctc0.7; then
    run "--model_conf ctc_weight=0.7" "${ptgst[@]}" --exp_tag _ctc0.7 --decode_config conf/decode_ctc0.7.yaml
fi
log "finished: ${experiments}"
