# Shell helpers shared by the staged pipelines (asr_ser.sh, ser.sh); sourced after the options.
# They read the pipeline's own variables: stage, stop_stage, force, py, emotions,
# allow_commands, all_sets, ngpu, num_nodes, cuda_cmd.

log() {  # a line with time, file, line and function of the caller
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
min() { if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi; }

# run_stage N MARKER...: true if stage N is selected and one of its markers is missing
# (a stage writing several outputs has one marker each), or with --force true.
run_stage() {
    [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ] || return 1
    local n=$1 m; shift
    ${force} && return 0
    for m in "$@"; do [ -f "${m}" ] || return 0; done
    log "Stage ${n}: already done ($* exists); --force true to redo"; return 1
}
# fail LOG: used as "command || fail LOG"; names the log of the failed step.
fail() { log "failed; see $1"; exit 1; }

# stage1_data: local/data.sh, then validation of every set the pipeline uses.
stage1_data() {
    log "Stage 1: data preparation -> data/ (log: exp/log/data.log)"
    local/data.sh > exp/log/data.log 2>&1 || fail exp/log/data.log
    # shellcheck disable=SC2046
    ${py} -m espnet_ser.bin.validate_data_dir --emotions "${emotions}" --allow_commands ${allow_commands} \
        $(for s in ${all_sets}; do echo data/${s}; done) >> exp/log/data.log 2>&1 || fail exp/log/data.log
    touch data/.stage1.done
}

# train_launcher EXP: the command prefix that runs training (one node: cuda_cmd; several:
# ESPnet's launcher), logging to EXP/train.log. Used as: eval $(train_launcher EXP) cmd ...
train_launcher() {
    if [ "${num_nodes}" -gt 1 ]; then
        echo "${py} -m espnet2.bin.launch --cmd '${cuda_cmd} --name $1' --log $1/train.log" \
             "--ngpu ${ngpu} --num_nodes ${num_nodes} --init_file_prefix $1/.dist_init_" \
             "--multiprocessing_distributed true --"
    else
        echo "${cuda_cmd} --gpu ${ngpu} $1/train.log"
    fi
}
