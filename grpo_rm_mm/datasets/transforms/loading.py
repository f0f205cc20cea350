"""Loading transforms that fail with the file's name instead of a bare assert.

Drop-in replacements for MMCV's ``LoadImageFromFile`` and MMSeg's
``LoadAnnotations``: a corrupt or truncated image or mask, a mask whose size
differs from its image, or a mask label the dataset does not have raises an
error naming the files. Registered in MMEngine's
root ``TRANSFORMS`` so MMSeg and MMPretrain pipelines both find them.

The stacks' inference code runs a config's test pipeline on images given
by the user, not on dataset samples: MMPretrain's inferencers load the
image themselves and MMSeg's ``inference_model`` gives images without
masks. The loaders let such inputs through (an image already in
``results``; no mask to load for an image that does not come from a
dataset), and keep every check for dataset samples.
"""
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.registry import TRANSFORMS
from mmseg.datasets.transforms import LoadAnnotations

JPEG_SUFFIXES = ('.jpg', '.jpeg')


class CorruptImageError(ValueError):
    """An image file exists but cannot be decoded."""


def jpeg_truncated(data: bytes) -> bool:
    """True if JPEG bytes end before their end-of-image marker.

    Walks the marker segments from the start (skipping APPn blocks such as
    an EXIF thumbnail, which has markers of its own) to the first start of
    scan, then looks for the end marker after it: entropy-coded data cannot
    contain one, so a cut-off file has none while a file with data appended
    after the image still does. Bytes that are not a JPEG give False (the
    decoder judges them).
    """
    if data[:2] != b'\xff\xd8':
        return False
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return False  # not a marker: unknown layout, let the decoder say
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan
            return data.find(b'\xff\xd9', pos) < 0
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], 'big')
    return True  # cut off in the headers


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that names the file when it cannot be decoded.

    OpenCV returns ``None`` for undecodable bytes (MMCV then asserts) and
    silently fills a truncated JPEG with grey; both raise
    :class:`CorruptImageError` here (or, with ``ignore_empty=True``, skip
    the sample as MMCV does). Arguments are those of MMCV's transform; file
    access goes through ``backend_args`` (the deprecated
    ``file_client_args`` is not supported).

    An image already loaded, without ``img_path`` (MMPretrain's
    ``ImageClassificationInferencer`` and ``FeatureExtractor`` read it
    before the pipeline), passes through.
    """

    def transform(self, results: dict) -> Optional[dict]:
        if results.get('img_path') is None and 'img' in results:
            return _already_loaded(results)
        if 'img_path' not in results:
            raise KeyError(f'{type(self).__name__} needs an img_path (or an '
                           f'already loaded img); got keys {sorted(results)}')
        filename = results['img_path']
        img_bytes = fileio.get(filename, backend_args=self.backend_args)
        problem = None
        if filename.lower().endswith(JPEG_SUFFIXES) and \
                jpeg_truncated(img_bytes):
            problem = 'truncated JPEG (no end-of-image marker)'
        else:
            img = mmcv.imfrombytes(
                img_bytes, flag=self.color_type, backend=self.imdecode_backend)
            if img is None:
                problem = 'cannot be decoded'
        if problem:
            if self.ignore_empty:
                return None
            raise CorruptImageError(f'corrupt image {filename}: {problem}')
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


def _already_loaded(results: dict) -> dict:
    """Fill in the shapes a loader sets, for an image given in memory."""
    shape = results['img'].shape[:2]
    results.setdefault('img_shape', shape)
    results.setdefault('ori_shape', shape)
    return results


@TRANSFORMS.register_module()
class CheckedLoadAnnotations(LoadAnnotations):
    """MMSeg ``LoadAnnotations`` that checks the mask file and its labels.

    Must follow the image loader. Three checks, each naming the mask file:

    - an undecodable or truncated mask is a :class:`CorruptImageError`;
    - a mask of another size than its image is a :class:`ValueError` naming
      both files and shapes (MMSeg would otherwise fail later, far from the
      cause, or crop mismatched regions). The mask is compared with the
      image as loaded (``ori_shape``), so it may also follow a ``Resize`` as
      in MMSeg's test pipelines;
    - with ``num_classes`` set, a label outside ``[0, num_classes)`` that is
      not ``ignore_index`` is a :class:`ValueError`: the loss would stop
      without naming the file, and MMSeg's ``IoUMetric`` would silently
      drop those pixels and report a wrong mIoU. Labels are checked as the
      model sees them, after ``reduce_zero_label`` and the dataset's
      ``label_map``.

    The tools fill ``num_classes`` and ``ignore_index`` in from each
    dataset's classes (:func:`grpo_rm_mm.utils.bind_mask_label_range`), in
    every split; a value given in the config is kept.

    An image given for prediction (MMSeg's ``inference_model``) has no
    mask: nothing is loaded. A sample of a segmentation dataset (MMSeg's
    datasets set ``seg_fields``) without ``seg_map_path`` is an error: its
    dataset has no annotation folder.

    Args:
        num_classes (int, optional): number of classes of the dataset; None
            skips the label check.
        ignore_index (int): the label of "void" pixels. Defaults to 255.
        **kwargs: the arguments of MMSeg's ``LoadAnnotations``.
    """

    def __init__(self, num_classes: Optional[int] = None,
                 ignore_index: int = 255, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        try:
            super()._load_seg_map(results)
        except FileNotFoundError:
            raise  # names the file already
        except (OSError, AttributeError) as err:
            # PIL: OSError (truncated, unidentified); OpenCV: None, which
            # MMSeg then calls .squeeze() on
            raise CorruptImageError(
                f"corrupt mask {results['seg_map_path']}: cannot be decoded "
                f'({err})') from None

    def transform(self, results: dict) -> dict:
        if results.get('seg_map_path') is None:
            if 'seg_fields' not in results:  # an image to predict on
                return results
            raise KeyError(
                f"sample {results.get('img_path')} has no seg_map_path: its "
                'dataset has no annotation folder (data_prefix.seg_map_path)'
                ', so there is no mask to load')
        results = super().transform(results)
        mask = results['gt_seg_map']
        mask_shape = tuple(mask.shape[:2])
        img_shape = results.get('ori_shape')
        if img_shape is not None and tuple(img_shape) != mask_shape:
            raise ValueError(
                f"mask {results.get('seg_map_path')} has size {mask_shape} "
                f"but its image {results.get('img_path')} has size "
                f'{tuple(img_shape)}')
        if self.num_classes is not None:
            self._check_labels(mask, results)
        return results

    def _check_labels(self, mask: np.ndarray, results: dict) -> None:
        bad = (mask >= self.num_classes) & (mask != self.ignore_index)
        if not bad.any():
            return
        values = np.unique(mask[bad]).tolist()
        applied = [name for name, on in (
            ('reduce_zero_label', self.reduce_zero_label),
            ('label_map', results.get('label_map'))) if on]
        seen = f" (after {' and '.join(applied)})" if applied else ''
        raise ValueError(
            f"mask {results.get('seg_map_path')} has label value(s) "
            f'{values}{seen} outside the dataset\'s {self.num_classes} '
            f'classes (0..{self.num_classes - 1}) that are not the ignore '
            f'index {self.ignore_index}')

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] + f', num_classes={self.num_classes}'
                f', ignore_index={self.ignore_index})')
