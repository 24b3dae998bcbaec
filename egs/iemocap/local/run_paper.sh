#!/usr/bin/env bash
# Every experiment of the GST paper (Kyung et al.) on IEMOCAP, 5-fold session CV each.
#   local/run_paper.sh --pretrained_dir exp/pretrained_gigaspeech [--ngpu 1] [--iemocap_root DIR]
# Prerequisites (see README.md): the GigaSpeech conformer extended with the emotion tokens
# (espnet_ser.bin.extend_pretrained) and, for "P.T. GSTs", a converted GST-Tacotron
# checkpoint at exp/gst_tacotron/gst.pth (espnet_ser.bin.convert_gst_tacotron).
# Options given here go to every ./run.sh call. Tables 3 and 5 (WER without the emotion
# token) need no run: stage 6 scores every decode with and without it.
set -euo pipefail
cd "$(dirname "$0")/.."
tuning=conf/tuning

# Tables 1 and 2: baseline, oracle emotion labels, GST, pretrained GST (token at the end)
for cfg in conformer conformer_oracle conformer_gst conformer_ptgst; do
    ./run.sh --train_config ${tuning}/train_asr_ser_${cfg}.yaml "$@"
done
# Table 4: the emotion token in front of the transcript (baseline and pretrained GST)
for cfg in conformer conformer_ptgst; do
    ./run.sh --train_config ${tuning}/train_asr_ser_${cfg}.yaml --emo_token_position front "$@"
done
# Figure 3: conditioning one encoder block k only (0-based; the paper counts 1..12)
for k in 0 1 2 3 4 5 6 7 8 9 10 11; do
    ./run.sh --train_config ${tuning}/train_asr_ser_conformer_ptgst.yaml --exp_tag _block${k} \
        --asr_args "--encoder_conf cond_layers=[${k}]" "$@"
done
# The other reading of the paper's alpha = 0.3 (equation 1 puts it on the attention term):
# 0.3 on attention = ESPnet ctc_weight 0.7, in training and in decoding.
./run.sh --train_config ${tuning}/train_asr_ser_conformer_ptgst.yaml --exp_tag _ctc0.7 \
    --asr_args "--model_conf ctc_weight=0.7" --decode_config conf/decode_ctc0.7.yaml "$@"
