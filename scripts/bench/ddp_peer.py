"""PyTorch peer of scripts/bench/ddp.ts: the same training step under DistributedDataParallel
(Gloo), or alone, on the same libtorch, timed the same way.

    WORLD_SIZE=.. RANK=.. MASTER_ADDR=.. MASTER_PORT=.. \
      /usr/bin/python3 scripts/bench/ddp_peer.py ARCH SIZE BATCH THREADS WARMUP STEPS

uint8 NHWC batch -> float /255 -> model -> cross entropy -> backward (DDP's buckets and hooks)
-> AdamW as torchts sets it up (peer_common.py). Prints one JSON line: the rank and the median step time in ms.
"""
import json
import warnings
import os
import statistics
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
import torchvision

from peer_common import adamw_like_torchts, time_steps
from peer_xresnet import xresnet18


def main():
    # DDP's note that 1x1 convolution gradients have other strides than its bucket views: not ours to fix.
    warnings.filterwarnings('ignore', message='Grad strides do not match')
    arch, size, batch, threads, warmup, steps = sys.argv[1], *map(int, sys.argv[2:7])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = xresnet18(num_classes=10) if arch == 'xresnet18' else getattr(torchvision.models, arch)(num_classes=10)
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world > 1:
        dist.init_process_group('gloo')
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = adamw_like_torchts(model)
    images = (torch.arange(batch * size * size * 3) * 2654435761 % 2**32 >> 24).to(torch.uint8).reshape(batch, size, size, 3)
    labels = torch.arange(batch) % 10

    def loss_of_step():
        return F.cross_entropy(model(images.permute(0, 3, 1, 2).float().div(255)), labels)

    times, _ = time_steps(opt, loss_of_step, warmup, steps)
    print(json.dumps({'rank': int(os.environ.get('RANK', '0')), 'medianMs': statistics.median(times)}))
    if world > 1:
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
