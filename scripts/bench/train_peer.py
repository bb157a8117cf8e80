"""PyTorch + torchvision peer of scripts/bench/train.ts: the same training recipe, plain PyTorch.

    /usr/bin/python3 scripts/bench/train_peer.py ROOT --size 28 --bs 64 --epochs 2 --lr 3e-3 \
        --threads 2 --min-scale 0.35 --seed 0

ROOT is an image folder (train/<class>, val/<class>). Recipe: xresnet18 (fastai's design,
written out below since fastai is not installed), RandomResizedCrop(size, scale=(min_scale, 1))
+ horizontal flip for training, Resize + CenterCrop for validation, ImageNet normalisation,
AdamW (betas 0.9/0.99, eps 1e-5, weight decay 0.01 on weights only), one cycle per step
(OneCycleLR with the reference's boundaries: see test/learn/schedule.test.ts), cross entropy.
DataLoader with no workers (decoding on the main process, as the measured baseline).
Prints one JSON line: per-epoch seconds and accuracy, images/s, peak RSS.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F
import torchvision
from torchvision import transforms as T

from peer_xresnet import xresnet18

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('root')
    ap.add_argument('--size', type=int, default=28)
    ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--epochs', type=int, default=2)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--min-scale', type=float, default=0.35)
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train_tf = T.Compose([T.RandomResizedCrop(args.size, scale=(args.min_scale, 1.0)), T.RandomHorizontalFlip(), T.ToTensor(), norm])
    valid_side = -(-int(args.size * 1.14) // 8) * 8
    valid_tf = T.Compose([T.Resize(valid_side), T.CenterCrop(args.size), T.ToTensor(), norm])
    train_set = torchvision.datasets.ImageFolder(f'{args.root}/train', train_tf)
    valid_set = torchvision.datasets.ImageFolder(f'{args.root}/val', valid_tf)
    train_dl = torch.utils.data.DataLoader(train_set, batch_size=args.bs, shuffle=True, drop_last=True, num_workers=0)
    valid_dl = torch.utils.data.DataLoader(valid_set, batch_size=args.bs, shuffle=False, num_workers=0)

    model = xresnet18(len(train_set.classes))
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=args.lr, betas=(0.95, 0.99), eps=1e-5)
    n = args.epochs * len(train_dl)
    pct, div, div_final = 0.25, 25.0, 1e5
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=n + 1, pct_start=(pct * n + 1) / (n + 1), anneal_strategy='cos',
        cycle_momentum=True, base_momentum=0.85, max_momentum=0.95, div_factor=div,
        final_div_factor=div_final / div, three_phase=False)

    epochs = []
    for epoch in range(args.epochs):
        start = time.perf_counter()
        model.train()
        seen = 0
        for x, y in train_dl:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(y)
        train_s = time.perf_counter() - start
        model.eval()
        correct, total, loss_sum = 0, 0, 0.0
        with torch.no_grad():
            for x, y in valid_dl:
                out = model(x)
                loss_sum += F.cross_entropy(out, y, reduction='sum').item()
                correct += (out.argmax(1) == y).sum().item()
                total += len(y)
        epochs.append({'seconds': time.perf_counter() - start, 'train_seconds': train_s, 'images': seen,
                       'valid_loss': loss_sum / total, 'accuracy': correct / total})
    print(json.dumps({'name': 'pytorch', 'torch': torch.__version__, 'threads': torch.get_num_threads(),
                      'epochs': epochs, 'peak_rss_mb': peak_rss_mb()}))


if __name__ == '__main__':
    main()
