#!/usr/bin/env bash
# One call on the GPU machine: unpack the carried node + node_modules, build the
# addon against that machine's Python torch (CUDA), run the test suite with CUDA
# as the default device, then the GPU benchmarks. Results land in $OUT.
# Prepare on the CPU machine first: bash scripts/prepare-gpu-carry.sh (only the node binary
# travels, not npm/npx, so tools run as `node node_modules/...`).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT" /tmp/torchts-node/bin
xz -dc .carry/node.xz > /tmp/torchts-node/bin/node && chmod +x /tmp/torchts-node/bin/node
export PATH=/tmp/torchts-node/bin:$PATH
tar -xJf .carry/node_modules.tar.xz
tar -xJf .carry/dist.tar.xz
node --version | tee "$OUT/versions.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$OUT/versions.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/versions.txt"

# Build against the Python torch (step 2 of the libtorch search order).
export TORCHTS_PYTHON=python3
node scripts/install.js --force > "$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; exit 1; }
grep -E "torchts: (using|building)" "$OUT/build.log"
node -e "console.log(JSON.stringify(require('./build/Release/torchts.node').info()))" | tee "$OUT/info.json"

# The portable (prebuilt) binary for this torch, loaded the way an install without a compiler would.
node scripts/prebuild.js --torch "$(command -v python3)" --out "$OUT/prebuilds" > "$OUT/prebuild.log" 2>&1 || tail -30 "$OUT/prebuild.log"
node -e '
const binary = require("./scripts/binary.js");
const { findLibtorch, describeLibtorch } = require("./scripts/find-libtorch.js");
const { record, reason } = binary.matchPrebuilt(process.argv[1], describeLibtorch(findLibtorch()));
if (!record) throw new Error(reason);
console.log("prebuilt", record.variant, JSON.stringify(binary.loadRecord(process.argv[1], record).info()));
' "$OUT" | tee "$OUT/prebuilt-info.txt"

# Tests with CUDA as the device under test; the Python peer is this machine's torch.
export TORCHTS_TEST_DEVICE=cuda TORCHTS_PYTHON=$(command -v python3)
node node_modules/mocha/bin/mocha.js 'test/**/*.test.ts' > "$OUT/tests.log" 2>&1
echo "tests exit $?"; grep -E "passing|failing|pending" "$OUT/tests.log"

# Data-parallel on CUDA tensors: 2 ranks share the one GPU over Gloo (NCCL refuses two ranks on
# one device); their weights must match bit for bit after every step.
for rank in 0 1; do
  STEP_DEVICE=cuda STEP_BACKEND=gloo RANK=$rank WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29555 \
    timeout 120 node --import tsx test/distributed/step-worker.ts "$OUT/ddp-r$rank.json" 1,0.01,0.01 1 &
done
wait
if cmp -s "$OUT/ddp-r0.json.2.bin" "$OUT/ddp-r1.json.2.bin"; then echo "ddp on cuda: ranks identical"; else echo "ddp on cuda: FAILED"; fi
rm -f "$OUT"/ddp-r*.bin

# Benchmarks: our step against PyTorch's on the same GPU (train.ts and data.ts are CPU-only).
for bench in scripts/bench/step.ts; do
  [ -f "$bench" ] || continue
  timeout 240 node --import tsx "$bench" --device cuda > "$OUT/$(basename "$bench" .ts).txt" 2>&1
  echo "== $bench (exit $?)"; tail -20 "$OUT/$(basename "$bench" .ts).txt"
done
