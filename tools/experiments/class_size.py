"""The class-set-size check: GRPO-RM against CE from 2 to 1000 classes.

A runner per point would cost more than the training itself, so this part
is a plain PyTorch loop around the loss functions: a linear head
(``nn.Linear``) on fixed features, Adam, a cosine schedule. The data are
made here: C class means drawn from N(0, I) in :data:`DIM` dimensions (a
seed per C, the same for every method and training seed), samples
``mean + SIGMA * N(0, I)``, balanced classes, a training and a validation
set. More classes crowd the same space, so the
task gets harder as C grows. The lagged points keep a copy of the head,
refreshed every ``refresh`` steps, as ``GRPOOldModelHook`` does.

Besides accuracy, every step checks that the loss, its gradient and the
loss's diagnostics are finite, and keeps the largest true-class advantage
(``grpo_adv_true``, the mean over the batch): with the per-group std it
grows like sqrt(C) (the true class stands out of C - 1 small rewards).
"""
import copy
import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from grpo_rm_mm.models.losses import grpo_rm_loss

DIM = 32
SIGMA = 1.5
TRAIN_PER_CLASS, VAL_PER_CLASS, MIN_SAMPLES = 20, 10, 400
BATCH, LR = 256, 1e-2


def make_clusters(num_classes: int, seed: int, per_class: int):
    """Gaussian clusters: (features (N, DIM), labels (N,)), balanced, at
    least :data:`MIN_SAMPLES`; the class means depend on C only."""
    means = torch.randn(num_classes, DIM, generator=torch.Generator()
                        .manual_seed(1000 + num_classes))
    count = max(per_class * num_classes, MIN_SAMPLES)
    labels = torch.arange(count) % num_classes
    noise = torch.randn(count, DIM,
                        generator=torch.Generator().manual_seed(seed))
    return means[labels] + SIGMA * noise, labels


def train_head(num_classes: int, seed: int, steps: int, val_every: int,
               loss: dict, refresh: Optional[int] = None) -> dict:
    """Train a linear head; ``loss``: ``{'type': 'CE'}`` or the keyword
    options of :func:`grpo_rm_loss`; ``refresh``: old-head lag in steps
    (None: on-policy). Returns the final / curve / train record of a run.
    """
    train_x, train_y = make_clusters(num_classes, 2 * seed, TRAIN_PER_CLASS)
    val_x, val_y = make_clusters(num_classes, 2 * seed + 1, VAL_PER_CLASS)
    torch.manual_seed(seed)
    head = nn.Linear(DIM, num_classes)
    old = copy.deepcopy(head) if refresh else None
    optimizer = torch.optim.Adam(head.parameters(), lr=LR)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, steps, eta_min=LR / 100)
    order = torch.Generator().manual_seed(seed)
    curve, adv_max, finite = [], -math.inf, True
    for step in range(1, steps + 1):
        idx = torch.randint(len(train_x), (BATCH, ), generator=order)
        logits = head(train_x[idx])
        if loss['type'] == 'CE':
            value = F.cross_entropy(logits, train_y[idx])
            stats = {}
        else:
            old_logits = None
            if old is not None:
                if (step - 1) % refresh == 0:
                    old.load_state_dict(head.state_dict())
                with torch.no_grad():
                    old_logits = old(train_x[idx])
            options = {k: v for k, v in loss.items() if k != 'type'}
            value, stats = grpo_rm_loss(logits, train_y[idx], old_logits,
                                        return_stats=True, **options)
            adv_max = max(adv_max, float(stats['grpo_adv_true']))
        optimizer.zero_grad()
        value.backward()
        finite &= bool(torch.isfinite(value)) and all(
            bool(torch.isfinite(p.grad).all()) for p in head.parameters())
        finite &= all(bool(torch.isfinite(v)) for v in stats.values())
        optimizer.step()
        schedule.step()
        if step % val_every == 0 or step == steps:
            with torch.no_grad():
                correct = (head(val_x).argmax(1) == val_y).float().mean()
            curve.append([step, float(correct) * 100])
    run = dict(final=dict(accuracy=curve[-1][1]),
               curve=dict(accuracy=curve), x_unit='step',
               train=dict(finite=float(finite)))
    if loss['type'] != 'CE':
        run['train']['grpo_adv_true_max'] = adv_max
    return run
