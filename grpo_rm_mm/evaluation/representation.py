"""kNN and linear-probe accuracy of a set of frozen features."""
from typing import Dict, Sequence

from torch import Tensor

from .checks import accuracy, check_features
from .knn import knn_predict
from .linear_probe import fit_linear_probe


def evaluate_representation(train_features: Tensor,
                            train_labels: Tensor,
                            test_features: Tensor,
                            test_labels: Tensor,
                            num_classes: int,
                            ks: Sequence[int] = (10, 20),
                            temperature: float = 0.07,
                            linear_probe: bool = True,
                            **probe_kwargs) -> Dict[str, float]:
    """Top-1 accuracies (%) of weighted kNN for each k and of a linear probe.

    Args:
        train_features, train_labels: (N, D) and (N,) training split.
        test_features, test_labels: (M, D) and (M,) test split.
        num_classes (int): number of classes.
        ks (Sequence[int]): kNN neighbour counts. Defaults to (10, 20).
        temperature (float): kNN vote temperature. Defaults to 0.07.
        linear_probe (bool): also fit the probe. Defaults to True.
        **probe_kwargs: passed to :func:`.fit_linear_probe`.

    Returns:
        dict: ``knn_k{k}_top1`` per k, ``linear_top1`` and the probe's
        chosen ``linear_weight_decay``.
    """
    test_labels = check_features(test_features, test_labels, num_classes,
                                 'test', dim=train_features.shape[1])
    results = {}
    for k in ks:
        preds = knn_predict(train_features, train_labels, test_features,
                            num_classes, k=k, temperature=temperature)
        results[f'knn_k{k}_top1'] = accuracy(preds, test_labels)
    if linear_probe:
        probe = fit_linear_probe(train_features, train_labels, num_classes,
                                 **probe_kwargs)
        results['linear_top1'] = accuracy(probe.predict(test_features),
                                          test_labels)
        results['linear_weight_decay'] = probe.weight_decay
    return results
