"""MMSeg's IoU metric that also reports background and foreground IoU."""
from typing import Dict

import numpy as np
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class ClassIoUMetric(IoUMetric):
    """``IoUMetric`` plus the background IoU and the foreground mean.

    MMSeg's ``IoUMetric`` only prints its per-class table; this one also
    returns ``IoU.<background class name>`` and ``mIoU.fg``, the mean IoU of
    the classes that occur (in the labels or the predictions, as in
    ``mIoU``) without the background, so that they reach the scalar logs
    (``vis_data/scalars.json``) and the learning curves: background and
    foreground behave differently under GRPO-RM's background penalty.

    Per-class IoUs of the other classes are not returned: a class absent
    from one evaluation would keep the value of an earlier one in
    MMEngine's scalar log.

    Args:
        background_index (int): the background class. Defaults to 0.
        **kwargs: :class:`mmseg.evaluation.IoUMetric` options.
    """

    def __init__(self, background_index: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.background_index = background_index

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        intersect = sum(r[0] for r in results).numpy().astype(np.float64)
        union = sum(r[1] for r in results).numpy().astype(np.float64)
        classes = self.dataset_meta['classes']
        if not 0 <= self.background_index < len(classes):
            raise ValueError(f'ClassIoUMetric background_index='
                             f'{self.background_index} is not a class index '
                             f'of the {len(classes)} classes')
        present = union > 0  # classes absent from labels and predictions
        iou = np.divide(intersect, union, out=np.zeros_like(union),
                        where=present)
        if present[self.background_index]:
            metrics[f'IoU.{classes[self.background_index]}'] = round(
                iou[self.background_index] * 100, 2)
        foreground = present.copy()
        foreground[self.background_index] = False
        if foreground.any():
            metrics['mIoU.fg'] = round(iou[foreground].mean() * 100, 2)
        return metrics
