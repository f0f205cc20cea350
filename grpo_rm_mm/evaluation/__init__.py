"""Evaluation: metrics registered for MMSeg."""
from .class_iou_metric import ClassIoUMetric

__all__ = ['ClassIoUMetric']
