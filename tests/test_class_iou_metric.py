"""ClassIoUMetric: background IoU and foreground mIoU."""
import numpy as np
import pytest
import torch

from grpo_rm_mm.evaluation import ClassIoUMetric

CLASSES = ('background', 'cat', 'dog', 'bird')


def confusion_iou(preds, labels, num_classes, ignore=255):
    """Reference: IoU from a confusion matrix (rows truth, columns pred)."""
    conf = np.zeros((num_classes, num_classes))
    for pred, label in zip(preds, labels):
        keep = label != ignore
        np.add.at(conf, (label[keep], pred[keep]), 1)
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    return inter, union


def test_matches_a_confusion_matrix_reference():
    rng = np.random.RandomState(0)
    # 'bird' never occurs: neither label nor prediction
    preds = [rng.randint(0, 3, (6, 7)) for _ in range(3)]
    labels = [rng.randint(0, 3, (6, 7)) for _ in range(3)]
    labels[0][0, :3] = 255
    metric = ClassIoUMetric(background_index=0)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [
        dict(pred_sem_seg=dict(data=torch.from_numpy(p)[None]),
             gt_sem_seg=dict(data=torch.from_numpy(t)[None]))
        for p, t in zip(preds, labels)
    ])
    result = metric.compute_metrics(metric.results)
    inter, union = confusion_iou(preds, labels, len(CLASSES))
    iou = 100 * inter[:3] / union[:3]
    assert not {'IoU.cat', 'IoU.dog', 'IoU.bird'} & set(result)
    assert result['IoU.background'] == pytest.approx(iou[0], abs=0.01)
    assert result['mIoU.fg'] == pytest.approx(iou[1:].mean(), abs=0.01)
    assert result['mIoU'] == pytest.approx(iou.mean(), abs=0.01)


def test_bad_background_index_is_named():
    metric = ClassIoUMetric(background_index=7)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [dict(pred_sem_seg=dict(data=torch.zeros(1, 2, 2)),
                             gt_sem_seg=dict(data=torch.zeros(1, 2, 2)))])
    with pytest.raises(ValueError, match='background_index=7'):
        metric.compute_metrics(metric.results)
