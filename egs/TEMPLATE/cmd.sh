# Job runners (Kaldi convention). run.pl runs jobs on this machine; on a Slurm cluster use
#   train_cmd="slurm.pl --config ${ESPNET_SER_ROOT}/tools/conf/slurm.conf"
#   cuda_cmd="slurm.pl --config ${ESPNET_SER_ROOT}/tools/conf/slurm.conf"
# (cuda_cmd receives --gpu N from the pipeline).
cmd_backend=${cmd_backend:-local}
case ${cmd_backend} in
    local)
        export train_cmd="run.pl"
        export cuda_cmd="run.pl"
        export decode_cmd="run.pl" ;;
    slurm)
        export train_cmd="slurm.pl --config ${ESPNET_SER_ROOT}/tools/conf/slurm.conf"
        export cuda_cmd="slurm.pl --config ${ESPNET_SER_ROOT}/tools/conf/slurm.conf"
        export decode_cmd="slurm.pl --config ${ESPNET_SER_ROOT}/tools/conf/slurm.conf" ;;
    *) echo "cmd.sh: unknown cmd_backend=${cmd_backend} (local or slurm)" >&2; return 1 ;;
esac
