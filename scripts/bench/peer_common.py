"""What the PyTorch peers of scripts/bench share: our optimizer's settings and the step timer."""
import time

import torch


def adamw_like_torchts(model):
    """AdamW as torchts sets it up: betas 0.9/0.99, eps 1e-5, weight decay 0.01 on weights only."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': no_decay, 'weight_decay': 0.0}],
                             lr=1e-3, betas=(0.9, 0.99), eps=1e-5)


def time_steps(opt, loss_of_step, warmup, steps):
    """Runs warmup + steps training steps (loss_of_step() -> loss; backward and opt.step here);
    returns the wall and process-CPU milliseconds of the timed ones."""
    times, cpu_times = [], []
    for i in range(warmup + steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = loss_of_step()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
            cpu_times.append((time.process_time() - cpu_start) * 1000)
    return times, cpu_times
