"""PyTorch peer of scripts/bench/predict.ts: torchvision's resnet18 in eval mode with the
weights torchts exported (a state_dict), on the same uint8 pixels, batch by batch.

  python3 predict_peer.py STATE_DICT PIXELS N SIZE CLASSES BS THREADS REPEATS MEAN STD

Prints one JSON line: images/s of each timed pass (the first pass warms up and is not timed)."""
import json
import sys
import time

import numpy as np
import torch
import torchvision

state, pixels, n, size, classes, bs, threads, repeats, mean, std = sys.argv[1:11]
n, size, classes, bs, threads, repeats = map(int, (n, size, classes, bs, threads, repeats))
torch.set_num_threads(threads)
model = torchvision.models.resnet18(num_classes=classes)
model.load_state_dict(torch.load(state))
model.eval()
images = torch.from_numpy(np.fromfile(pixels, dtype=np.uint8).reshape(n, size, size, 3))
mean = torch.tensor(json.loads(mean)).view(1, 3, 1, 1)
std = torch.tensor(json.loads(std)).view(1, 3, 1, 1)


def one_pass():
    """Every image once: uint8 NHWC -> normalised float NCHW -> logits -> softmax, as torchts's predict."""
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, n, bs):
            x = images[i:i + bs].permute(0, 3, 1, 2).float().div_(255).sub_(mean).div_(std)
            torch.softmax(model(x), 1)
    return n / (time.perf_counter() - start)


one_pass()
print(json.dumps({'torch': torch.__version__, 'rates': [one_pass() for _ in range(repeats)]}))
