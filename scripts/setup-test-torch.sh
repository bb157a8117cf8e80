#!/usr/bin/env bash
# Sets up the pip PyTorch installs the tests build and run against, as our pip users have them:
# a venv per libtorch under $TORCHTS_HOME (default ~/.cache/torchts).
#   bash scripts/setup-test-torch.sh          torch 2.13.0+cpu  -> venv-torch2.13-cpu
#   bash scripts/setup-test-torch.sh cuda     torch 2.14.1+cu130 and its nvidia-* wheels -> venv-torch2.14-cu13
# Where pip is configured with a local wheel mirror (`pip config list` shows extra-index-url),
# the mirror is the index, so pip never waits on an index it cannot reach.
set -euo pipefail
home=${TORCHTS_HOME:-$HOME/.cache/torchts}
python=${PYTHON:-python3}
which=${1:-cpu}

index_args=()
read -r -a mirrors <<< "$($python -m pip config get global.extra-index-url 2>/dev/null || true)"
if [ "${#mirrors[@]}" -gt 0 ]; then
  index_args=(--index-url "${mirrors[0]}")
  [ "${#mirrors[@]}" -gt 1 ] && index_args+=(--extra-index-url "${mirrors[1]}")
fi

make_venv() {
  local dir=$1
  [ -x "$dir/bin/python3" ] || $python -m venv "$dir"
}

case "$which" in
  cpu)
    venv=$home/venv-torch2.13-cpu
    make_venv "$venv"
    "$venv/bin/pip" install -q "${index_args[@]}" 'torch==2.13.0+cpu' numpy
    ;;
  cuda)
    venv=$home/venv-torch2.14-cu13
    make_venv "$venv"
    # torch's cuda-bindings and triton dependencies are for Python code and are not needed to
    # link or load libtorch; the rest are its declared dependencies.
    "$venv/bin/pip" install -q "${index_args[@]}" --no-deps 'torch==2.14.1'
    "$venv/bin/pip" install -q "${index_args[@]}" filelock 'typing-extensions>=4.10.0' sympy networkx jinja2 fsspec numpy \
      'cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3' \
      nvidia-cudnn-cu13==9.24.0.43 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 nvidia-nvshmem-cu13==3.4.5
    ;;
  *)
    echo "setup-test-torch: expected 'cpu' or 'cuda', got '$which'" >&2
    exit 2
    ;;
esac
"$venv/bin/python3" -c 'import torch; print("setup-test-torch:", torch.__version__, "in", torch.__file__)'
