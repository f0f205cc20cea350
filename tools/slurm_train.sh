#!/usr/bin/env bash
# Train on a SLURM cluster: srun starts one task per GPU and MMEngine's slurm
# launcher reads SLURM_PROCID / SLURM_NTASKS / SLURM_NODELIST (MMSeg's
# tools/slurm_train.sh, same arguments):
#   [GPUS=4] [GPUS_PER_NODE=4] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [options]
# WORK_DIR may also be given as --work-dir; PY_ARGS (environment) adds
# train.py options too. On nodes without CUDA each task trains on the CPU
# with the gloo backend.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py" \
        "options]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3
WORK_DIR=()
if [ $# -gt 0 ] && [[ $1 != -* ]]; then
    WORK_DIR=(--work-dir "$1")
    shift
fi
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
PY_ARGS=${PY_ARGS:-}
PYTHON=${PYTHON:-python}
TOOLS=$(dirname "$0")
# SRUN_ARGS and PY_ARGS hold several words: left unquoted on purpose
# shellcheck disable=SC2086
PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$TOOLS/train.py" "$CONFIG" "${WORK_DIR[@]}" \
    --launcher slurm $PY_ARGS "$@"
