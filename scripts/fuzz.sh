#!/usr/bin/env bash
# Fuzzes the readers of untrusted files (fuzz/README.md): builds the libFuzzer harnesses with
# clang + ASan + UBSan against Debian's libtorch, makes a seed corpus of real files, runs each
# harness for SECONDS (default 600) and prints executions, coverage and crashes.
#   bash scripts/fuzz.sh [SECONDS [HARNESS...]]   (needs clang-14 and libclang-rt-14-dev from apt)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(pth_reader checkpoint_reader jpeg_decoder)
out=build-fuzz
py=${TORCHTS_PYTHON:-/usr/bin/python3}
cxx=${CXX_FUZZ:-clang++-14}
mkdir -p "$out/obj" "$out/corpus"
flags=(-std=c++17 -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  -Inative -I/usr/include/torch/csrc/api/include -DTORCHTS_HAVE_JPEG)
sources=(native/checkpoint.cc native/checkpoint_format.cc native/pickle.cc native/zip.cc native/jpeg_decode.cc
  native/models/registry.cc native/models/resnet.cc native/models/xresnet.cc)

# Objects once (two at a time), newer than their source.
compile() {
  local src=$1 obj=$out/obj/$(echo "$1" | tr / _).o
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ]; then "$cxx" "${flags[@]}" -c "$src" -o "$obj"; fi
}
export -f compile; export cxx out
for src in "${sources[@]}"; do [ -f "$src" ] && echo "$src"; done | FLAGS="${flags[*]}" xargs -P 2 -I{} bash -c 'flags=($FLAGS); compile {}'
objects=()
for src in "${sources[@]}"; do [ -f "$src" ] && objects+=("$out/obj/$(echo "$src" | tr / _).o"); done
link=(-fsanitize=fuzzer,address,undefined -ltorch -ltorch_cpu -lc10 -ljpeg)
for harness in pth_reader checkpoint_reader jpeg_decoder; do
  "$cxx" "${flags[@]}" "fuzz/$harness.cc" "${objects[@]}" "${link[@]}" -o "$out/$harness"
done

# Seeds: torch.save files from PyTorch, torchts checkpoints in both formats, JPEGs.
"$py" - "$out/corpus" <<'PY'
import io, os, struct, sys, collections
import torch
from PIL import Image
root = sys.argv[1]
for d in ('pth_reader', 'checkpoint_reader', 'jpeg_decoder'):
    os.makedirs(os.path.join(root, d), exist_ok=True)
state = collections.OrderedDict(w=torch.arange(6.).reshape(2, 3), b=torch.zeros(3), n=torch.tensor(7))
torch.save(state, f'{root}/pth_reader/ordered.pth')
torch.save(dict(state), f'{root}/pth_reader/dict.pth', pickle_protocol=4)
torch.save(state, f'{root}/pth_reader/legacy.pth', _use_new_zipfile_serialization=False)
big = torch.arange(12.)
torch.save({'v': big[2:8:2], 'u': big}, f'{root}/pth_reader/views.pth')
# Format 2 checkpoints (native/checkpoint_format.h), written here the way torchts writes them.
def crc(b):
    import zlib
    return zlib.crc32(b) & 0xffffffff
def tsl(meta, tensors):
    h = struct.pack('<I', len(meta)) + b''.join(struct.pack('<I', len(k)) + k + struct.pack('<I', len(v)) + v for k, v in meta)
    h += struct.pack('<I', len(tensors))
    codes = {torch.float32: 1, torch.int64: 5}
    data = b''
    for i, (name, t) in enumerate(tensors):
        raw = t.contiguous().numpy().tobytes()
        h += struct.pack('<I', len(name)) + name + struct.pack('<BB', codes[t.dtype], t.dim())
        h += b''.join(struct.pack('<q', d) for d in t.shape) + struct.pack('<QQI', len(data), len(raw), crc(raw))
        data += raw + (b'\0' * ((-len(raw)) % 64) if i + 1 < len(tensors) else b'')
    head = b'TSCKPT\r\n' + struct.pack('<II', 2, len(h)) + h + struct.pack('<I', crc(h))
    return head + b'\0' * ((-len(head)) % 64) + data
open(f'{root}/checkpoint_reader/format2.tsl', 'wb').write(tsl([(b'meta', b'{"arch":"x"}')], [(b'w', torch.arange(6.).reshape(2, 3)), (b'n', torch.tensor(7))]))
for name, img in [('gray', Image.new('L', (24, 17), 90)), ('rgb', Image.frombytes('RGB', (33, 20), bytes((i * 37) % 256 for i in range(33 * 20 * 3))))]:
    for progressive in (False, True):
        buf = io.BytesIO()
        img.save(buf, 'JPEG', quality=80, progressive=progressive)
        open(f'{root}/jpeg_decoder/{name}-{int(progressive)}.bin', 'wb').write(bytes([16]) + buf.getvalue())
PY
# A format 1 checkpoint from the addon itself (what torchts wrote before format 2).
node --import tsx -e "require('./lib/native-internal').nativeInternals().writeFormat1Checkpoint('$out/corpus/checkpoint_reader/format1.tsl', '{}')"

export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1
status=0
for harness in "${harnesses[@]}"; do
  mkdir -p "$out/$harness.work" && cp -n "$out/corpus/$harness"/* "$out/$harness.work/" 2>/dev/null || true
  log=$out/$harness.log
  (cd "$out" && "./$harness" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 -timeout=20 \
    -artifact_prefix="$harness-" "$harness.work" > "$harness.log" 2>&1) || status=1
  runs=$(grep -oE "Done [0-9]+ runs" "$log" | grep -oE "[0-9]+" || echo "?")
  cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+ corp: [0-9]+" "$log" | tail -1 || true)
  crashes=$(find "$out" -maxdepth 1 \( -name "$harness-crash-*" -o -name "$harness-leak-*" -o -name "$harness-timeout-*" -o -name "$harness-oom-*" \) | wc -l)
  echo "fuzz $harness: ${seconds} s | ${runs} runs | ${cov:-no coverage line} | crashes, leaks, timeouts, ooms: $crashes"
done
exit $status
