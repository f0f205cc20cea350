"""Weighted k-nearest-neighbour classification (DINOv2's kNN protocol)."""
import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import check_features


def knn_predict(train_features: Tensor,
                train_labels: Tensor,
                test_features: Tensor,
                num_classes: int,
                k: int = 20,
                temperature: float = 0.07,
                chunk_size: int = 256) -> Tensor:
    """Predict test labels by a similarity-weighted vote of neighbours.

    DINOv2's protocol: features are L2-normalised, neighbours are the ``k``
    training samples of highest cosine similarity ``s``, and each votes for
    its label with weight ``exp(s / temperature)``; the class with the
    largest total wins (ties: the lowest class index). The weights are
    normalised per test sample (a softmax over the ``k`` similarities, as
    DINOv2 does), which changes no vote but cannot overflow.

    Args:
        train_features (Tensor): (N, D) features of the training samples.
        train_labels (Tensor): (N,) their class indices in
            ``[0, num_classes)``.
        test_features (Tensor): (M, D) features to classify.
        num_classes (int): number of classes.
        k (int): neighbours per test sample (at most N). Defaults to 20.
        temperature (float): vote temperature T. Defaults to 0.07.
        chunk_size (int): test samples per similarity matrix, which bounds
            memory to ``chunk_size x N``. Defaults to 256.

    Returns:
        Tensor: (M,) int64 predicted labels, on ``test_features``' device.
    """
    train_labels = check_features(train_features, train_labels, num_classes,
                                  'train')
    check_features(test_features, None, num_classes, 'test',
                   dim=train_features.shape[1])
    if not 1 <= k <= len(train_features):
        raise ValueError(f'k={k} must be in [1, {len(train_features)}] (the '
                         'number of training samples)')
    if temperature <= 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    device = test_features.device
    train = F.normalize(train_features.float(), dim=1).to(device)
    labels = train_labels.to(device)
    preds = []
    for start in range(0, len(test_features), chunk_size):
        test = F.normalize(test_features[start:start + chunk_size].float(),
                           dim=1)
        sims, idx = (test @ train.T).topk(k, dim=1)
        weights = (sims / temperature).softmax(dim=1)
        votes = torch.zeros(len(test), num_classes, device=device)
        votes.scatter_add_(1, labels[idx], weights)
        preds.append(votes.argmax(dim=1))
    if not preds:
        return torch.zeros(0, dtype=torch.long, device=device)
    return torch.cat(preds)
