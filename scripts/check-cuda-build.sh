#!/usr/bin/env bash
# Compiles the CUDA variant against pip torch 2.14.1+cu130 (C++20, nvrtc from the nvidia wheels,
# an arch list instead of a GPU probe) on a machine without a GPU, loads its portable binary the
# way a prebuilt install does, and trains one epoch with the source-built one: 'auto' must fall
# back to the CPU and say so in one line. Run after `npm install` (it uses dist/ and node_modules/).
set -euo pipefail
cd "$(dirname "$0")/.."
home=${TORCHTS_HOME:-$HOME/.cache/torchts}
bash scripts/setup-test-torch.sh cuda
venv=$home/venv-torch2.14-cu13
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

node scripts/prebuild.js --torch "$venv/bin/python3" --out "$out/prebuilds"
variant=torch2.14-cxx11-cu13

# The portable binary, loaded as an install with this libtorch would load it.
node -e '
const binary = require("./scripts/binary.js");
const { findLibtorch, describeLibtorch } = require("./scripts/find-libtorch.js");
const lib = describeLibtorch(findLibtorch({ PATH: process.argv[1], HOME: process.env.HOME }));
const root = process.argv[2];
const { record, reason } = binary.matchPrebuilt(root, lib);
if (!record) throw new Error(reason);
const failure = binary.probeRecord(root, record);
if (failure) throw new Error(failure);
const info = binary.loadRecord(root, record).info();
console.log("portable", record.variant, JSON.stringify(info));
if (!info.cudaBuild || info.cudaVersion !== "13.0" || info.cudaAvailable) throw new Error("unexpected info()");
// Data-parallel backends: NCCL for CUDA tensors, Gloo (headers from Debian libgloo-dev) for CPU ones.
for (const backend of ["c10d-gloo", "c10d-nccl"]) if (!info.features.includes(backend)) throw new Error("no " + backend + " in this build");
' "$venv/bin:/nonexistent" "$out"

# One epoch on the bundled data with 'auto': the CPU, and one line that says why.
TORCHTS_ADDON="build-prebuild/$variant/Release/torchts.node" \
  node dist/scripts/cli.js --epochs 1 --out "$out/run" > "$out/stdout" 2> "$out/stderr"
tail -n 3 "$out/stdout"
fallback='is a CUDA 13.0 build but no CUDA device is usable here; using the CPU'
if [ "$(grep -c "$fallback" "$out/stderr")" != 1 ]; then
  echo "check-cuda-build: expected one fallback line on stderr, got:" >&2
  cat "$out/stderr" >&2
  exit 1
fi
grep "$fallback" "$out/stderr"
echo "check-cuda-build: $variant compiled, loads without a GPU, and trains on the CPU"
