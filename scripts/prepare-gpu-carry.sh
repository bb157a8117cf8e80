#!/usr/bin/env bash
# Packs what the GPU machine lacks (it has no Node.js and no network) into .carry/
# (git-ignored): an xz-compressed node binary, node_modules and the compiled dist/.
# Then: run `bash scripts/gpu-check.sh` there with carry [".carry"].
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
mkdir -p .carry
xz -T0 -6 -c "$(command -v node)" > .carry/node.xz
# sharp's prebuilt libvips and esbuild are linux-x64 glibc binaries, as the GPU machine is.
tar --exclude='node_modules/typescript' -cJf .carry/node_modules.tar.xz node_modules
tar -cJf .carry/dist.tar.xz dist
du -sh .carry/*
