"""Expected calibration error (ECE) as an MMPretrain metric."""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS
from torch import Tensor


def expected_calibration_error(scores: Tensor, labels: Tensor,
                               num_bins: int = 10) -> Dict[str, float]:
    """ECE of class scores over ``num_bins`` equal-width confidence bins.

    The confidence of a sample is its largest score; bin ``b`` holds the
    confidences in ``(b / num_bins, (b + 1) / num_bins]`` (the first bin
    also holds 0). ECE is the sample-weighted mean over the bins of
    ``|accuracy - mean confidence|`` (Guo et al., 2017)::

        ECE = sum_b (n_b / n) * |acc_b - conf_b|

    Args:
        scores (Tensor): (N, C) class probabilities (e.g. softmax).
        labels (Tensor): (N,) integer class indices.
        num_bins (int): Defaults to 10.

    Returns:
        dict: ``ECE`` and the mean ``confidence``, both in percent.
    """
    if scores.dim() != 2 or labels.shape != scores.shape[:1]:
        raise ValueError('expected_calibration_error: scores (N, C) and '
                         f'labels (N,), got {tuple(scores.shape)} and '
                         f'{tuple(labels.shape)}')
    if not len(scores):
        raise ValueError('expected_calibration_error: no samples')
    if labels.is_floating_point() or labels.min() < 0 or \
            labels.max() >= scores.shape[1]:
        raise ValueError('expected_calibration_error: labels must be class '
                         f'indices in [0, {scores.shape[1]}), got '
                         f'{labels.dtype} in [{labels.min()}, '
                         f'{labels.max()}]')
    scores = scores.double()
    if not torch.isfinite(scores).all() or scores.min() < 0 or \
            scores.max() > 1 + 1e-6:
        raise ValueError('expected_calibration_error: scores must be '
                         'probabilities in [0, 1] (softmax scores), got '
                         f'values in [{scores.min()}, {scores.max()}]')
    confidence, predicted = scores.max(1)
    correct = (predicted == labels).double()
    # ceil(conf * bins) - 1: the upper edge belongs to its bin
    bins = (confidence * num_bins).ceil().long().clamp(1, num_bins) - 1
    count = torch.zeros(num_bins, dtype=torch.float64).index_add_(
        0, bins, torch.ones_like(confidence))
    gap = (torch.zeros_like(count).index_add_(0, bins, correct) -
           torch.zeros_like(count).index_add_(0, bins, confidence)).abs()
    # sum_b (n_b / n) |acc_b - conf_b| = sum_b |sum correct - sum conf| / n
    ece = gap.sum() / count.sum()
    return dict(ECE=float(ece) * 100, confidence=float(
        confidence.mean()) * 100)


@METRICS.register_module()
class ExpectedCalibrationError(BaseMetric):
    """MMPretrain metric: ECE with equal-width confidence bins.

    Add it next to the accuracy::

        val_evaluator = [dict(type='Accuracy', topk=(1, )),
                         dict(type='ExpectedCalibrationError')]

    logs ``calibration/ECE`` and ``calibration/confidence`` (the mean top
    score), both in percent (:func:`expected_calibration_error`). It needs
    the head's ``pred_score`` (every MMPretrain ``ClsHead`` gives it).

    Args:
        num_bins (int): Defaults to 10.
        collect_device (str): Defaults to 'cpu'.
        prefix (str, optional): Defaults to 'calibration'.
    """
    default_prefix: Optional[str] = 'calibration'

    def __init__(self, num_bins: int = 10, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        if not isinstance(num_bins, int) or num_bins < 1:
            raise ValueError('ExpectedCalibrationError: num_bins must be an '
                             f'int >= 1, got {num_bins!r}')
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.num_bins = num_bins

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'pred_score' not in sample:
                raise KeyError('ExpectedCalibrationError needs pred_score '
                               'in the data samples (class scores); got '
                               f'the keys {sorted(sample)}')
            label = sample['gt_label'].cpu().view(-1)
            if label.numel() != 1:
                raise ValueError('ExpectedCalibrationError needs one class '
                                 'index per sample (single-label), got '
                                 f'gt_label {label.tolist()}')
            self.results.append((sample['pred_score'].cpu(), label))

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        scores = torch.stack([r[0] for r in results])
        labels = torch.cat([r[1] for r in results])
        return expected_calibration_error(scores, labels, self.num_bins)
