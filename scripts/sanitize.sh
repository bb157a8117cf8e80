#!/usr/bin/env bash
# The native tests under AddressSanitizer + UndefinedBehaviorSanitizer: builds the addon with
# -fsanitize=address,undefined into build-asan/ (gcc, against Debian's libtorch), then runs the
# tests that reach native code with the sanitizer runtimes preloaded into node. Leak detection is
# off here (node and V8 keep allocations until exit); scripts/fuzz.sh checks the file readers
# for leaks with LeakSanitizer on.
#   bash scripts/sanitize.sh [mocha test files...]
set -euo pipefail
cd "$(dirname "$0")/.."
torch_dir=${Torch_DIR:-/usr/lib/x86_64-linux-gnu/cmake/Torch}
node node_modules/cmake-js/bin/cmake-js compile -p 2 -O build-asan "--CDTorch_DIR=$torch_dir" \
  "--CDCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize=vptr" \
  "--CDCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" > build-asan.log 2>&1 || { tail -30 build-asan.log; exit 1; }
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=('test/native/*.test.ts' test/data/jpeg.test.ts test/learn/non-finite.test.ts)
# vptr is off (libtorch was not built for it). allocator_may_return_null: a test asks for more
# memory than exists and expects the std::bad_alloc it gets without ASan, not an abort.
TORCHTS_ADDON="$PWD/build-asan/Release/torchts.node" \
  LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" \
  ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  node node_modules/mocha/bin/mocha.js "${tests[@]}" 2>&1 | tee build-asan-tests.log
grep -qE "runtime error|ERROR: AddressSanitizer" build-asan-tests.log && { echo "sanitize: reports above"; exit 1; }
echo "sanitize: no ASan or UBSan report"
