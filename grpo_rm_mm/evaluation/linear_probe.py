"""Softmax regression on frozen features (the linear probe)."""
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import accuracy, check_features

#: L2 penalties tried by default, strongest first (ties keep the first).
DEFAULT_WEIGHT_DECAYS = (1e-2, 1e-3, 1e-4, 1e-5)


@dataclass
class LinearProbe:
    """A fitted softmax regression: ``logits = ((x - mean) / std) W^T + b``.

    Attributes:
        mean (Tensor): (D,) training feature mean.
        std (Tensor): (D,) training feature standard deviation (1 where a
            feature is constant).
        weight (Tensor): (C, D).
        bias (Tensor): (C,).
        weight_decay (float): the L2 penalty it was fitted with.
        val_accuracy (float, optional): held-out accuracy (%) that chose
            ``weight_decay``; None when there was no choice to make.
    """
    mean: Tensor
    std: Tensor
    weight: Tensor
    bias: Tensor
    weight_decay: float
    val_accuracy: Optional[float] = None

    def logits(self, features: Tensor) -> Tensor:
        x = (features.float().to(self.mean.device) - self.mean) / self.std
        return x @ self.weight.T + self.bias

    def predict(self, features: Tensor) -> Tensor:
        """(M,) int64 predicted labels."""
        return self.logits(features).argmax(dim=1)


def _fit(x: Tensor, y: Tensor, num_classes: int, weight_decay: float,
         max_iter: int) -> tuple:
    """Minimise mean cross-entropy + weight_decay / 2 * ||W||^2 (L-BFGS).

    The problem is convex, so full-batch L-BFGS from zero reaches the same
    optimum on every run, without a learning rate to tune.
    """
    weight = torch.zeros(num_classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1, max_iter=max_iter,
                            history_size=20, tolerance_grad=1e-6,
                            tolerance_change=1e-9,
                            line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, y)
        loss = loss + 0.5 * weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return weight.detach(), bias.detach()


def fit_linear_probe(train_features: Tensor,
                     train_labels: Tensor,
                     num_classes: int,
                     weight_decays: Sequence[float] = DEFAULT_WEIGHT_DECAYS,
                     val_fraction: float = 0.1,
                     max_iter: int = 200,
                     seed: int = 0) -> LinearProbe:
    """Fit softmax regression on standardised frozen features.

    With several ``weight_decays``, each is fitted on a random
    ``1 - val_fraction`` of the training samples and scored on the rest;
    the best one (ties: the first) is refitted on all of them. The test
    split is never looked at. Runs on the CPU in float32.

    Args:
        train_features (Tensor): (N, D).
        train_labels (Tensor): (N,) class indices.
        num_classes (int): number of classes C.
        weight_decays (Sequence[float]): L2 penalties to choose from.
        val_fraction (float): held-out share used for the choice.
        max_iter (int): L-BFGS iterations per fit.
        seed (int): seed of the held-out split.

    Returns:
        LinearProbe: the fitted probe.
    """
    labels = check_features(train_features, train_labels, num_classes,
                            'train')
    if not weight_decays:
        raise ValueError('weight_decays is empty')
    if not 0 < val_fraction < 1:
        raise ValueError(f'val_fraction must be in (0, 1), got {val_fraction}')
    features = train_features.detach().float().cpu()
    labels = labels.cpu()
    mean = features.mean(dim=0)
    std = features.std(dim=0, unbiased=False)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    x = (features - mean) / std

    val_acc = None
    weight_decay = weight_decays[0]
    if len(weight_decays) > 1:
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(
            seed))
        num_val = max(1, int(round(len(x) * val_fraction)))
        if num_val >= len(x):
            raise ValueError(f'{len(x)} training samples cannot be split for '
                             f'val_fraction={val_fraction}')
        val, fit = perm[:num_val], perm[num_val:]
        scores = []
        for wd in weight_decays:
            w, b = _fit(x[fit], labels[fit], num_classes, wd, max_iter)
            scores.append(accuracy((x[val] @ w.T + b).argmax(1), labels[val]))
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        weight_decay, val_acc = weight_decays[best], scores[best]
    weight, bias = _fit(x, labels, num_classes, weight_decay, max_iter)
    return LinearProbe(mean, std, weight, bias, weight_decay, val_acc)


def linear_probe_predict(train_features: Tensor, train_labels: Tensor,
                         test_features: Tensor, num_classes: int,
                         **kwargs) -> Tensor:
    """Fit :func:`fit_linear_probe` and return (M,) test predictions."""
    check_features(test_features, None, num_classes, 'test',
                   dim=train_features.shape[1])
    probe = fit_linear_probe(train_features, train_labels, num_classes,
                             **kwargs)
    return probe.predict(test_features).to(test_features.device)
