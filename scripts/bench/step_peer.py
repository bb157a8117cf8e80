"""PyTorch peer of scripts/bench/step.ts: the same training step in Python on the same libtorch.

    /usr/bin/python3 scripts/bench/step_peer.py ARCH SIZE BATCH THREADS WARMUP STEPS

uint8 NHWC batch -> float /255 -> (x - mean)/std -> model -> cross entropy -> backward ->
AdamW (betas 0.9/0.99, eps 1e-5, wd 0.01 on weights, none on 1-D parameters). Prints one JSON
line: the median and the best step time in ms (wall clock and process CPU time) and the
parameter count (to confirm the same model).
xresnet18 is written out here after fastai's design (fastai is not installed).
"""
import json
import statistics
import sys

import torch
import torch.nn.functional as F
import torchvision

from peer_common import adamw_like_torchts, time_steps
from peer_xresnet import xresnet18


def main():
    arch, size, batch, threads, warmup, steps = sys.argv[1], *map(int, sys.argv[2:7])
    device = torch.device(sys.argv[7] if len(sys.argv) > 7 else 'cpu')
    # On CUDA, the same set-up as ours: channels_last model, uint8 copied from pinned memory.
    layout = torch.channels_last if device.type == 'cuda' else torch.contiguous_format
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    classes = 10
    model = torchvision.models.resnet18(num_classes=classes) if arch == 'resnet18' else xresnet18(classes)
    model = model.to(device, memory_format=layout)
    opt = adamw_like_torchts(model)
    images = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)
    if device.type == 'cuda':
        images = images.pin_memory()
    labels = (torch.arange(batch) % classes).to(device)
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    model.train()

    def loss_of_step():
        x = (images.to(device, non_blocking=True).permute(0, 3, 1, 2).float() / 255 - mean) / std
        return F.cross_entropy(model(x.contiguous(memory_format=layout)), labels)

    times, cpu_times = time_steps(opt, loss_of_step, warmup, steps)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({'ms': statistics.median(times), 'cpuMs': statistics.median(cpu_times), 'bestMs': min(times),
                      'bestCpuMs': min(cpu_times), 'params': params, 'threads': torch.get_num_threads()}))


main()
