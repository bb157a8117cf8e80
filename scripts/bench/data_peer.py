"""Peer for scripts/bench/data.ts: torchvision ImageFolder + PIL DataLoader.

Times one pass of decode + RandomResizedCrop + horizontal flip + collate into
uint8 batches (no float conversion, the same work our loader does), and PIL's
decode-only speed on the same files. Prints one JSON object on stdout.

Usage: /usr/bin/python3 data_peer.py ROOT --size 128 --bs 64 --workers 0 2
"""
import argparse
import json
import os
import resource
import time

import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms as T


def pil_rgb(path):
    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


def cpu_seconds():
    """CPU time of this process and of its finished (joined) children, e.g. DataLoader workers."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def rate(n, wall, cpu):
    return {"img_per_s": n / wall, "cpu_ms_per_img": 1000 * cpu / n, "images": n}


def time_loader(root, size, bs, workers, seed):
    torch.manual_seed(seed)
    tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.PILToTensor()])
    ds = torchvision.datasets.ImageFolder(root, transform=tf, loader=pil_rgb)
    dl = DataLoader(ds, batch_size=bs, shuffle=True, drop_last=True, num_workers=workers,
                    persistent_workers=False)
    cpu0 = cpu_seconds()
    start = time.perf_counter()
    n = 0
    for images, labels in dl:
        assert images.dtype == torch.uint8
        n += images.shape[0]
    wall = time.perf_counter() - start
    del dl  # joins the workers so their CPU time is counted
    return rate(n, wall, cpu_seconds() - cpu0)


def time_decode(files):
    cpu0 = cpu_seconds()
    start = time.perf_counter()
    for f in files:
        pil_rgb(f).load()
    return rate(len(files), time.perf_counter() - start, cpu_seconds() - cpu0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--bs", type=int, default=64)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(1)
    files = [os.path.join(d, f) for d, _, fs in os.walk(a.root) for f in fs]
    out = {"torch": torch.__version__, "torchvision": torchvision.__version__,
           "pil_decode_1core": time_decode(files), "loader": {}}
    for w in a.workers:
        out["loader"][str(w)] = time_loader(a.root, a.size, a.bs, w, a.seed)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
