"""Loading transforms that fail with the file's name instead of a bare assert.

Drop-in replacements for MMCV's ``LoadImageFromFile`` and MMSeg's
``LoadAnnotations``: a corrupt or truncated image, or a mask whose size differs
from its image, raises an error naming the files. Registered in MMEngine's
root ``TRANSFORMS`` so MMSeg and MMPretrain pipelines both find them.
"""
import os.path as osp

from mmcv.transforms import LoadImageFromFile
from mmengine.registry import TRANSFORMS
from mmseg.datasets.transforms import LoadAnnotations

JPEG_SUFFIXES = ('.jpg', '.jpeg')


class CorruptImageError(ValueError):
    """An image file exists but cannot be decoded."""


def _jpeg_truncated(path: str) -> bool:
    """True if a local JPEG lacks its end-of-image marker (cut-off file)."""
    if not path.lower().endswith(JPEG_SUFFIXES) or not osp.isfile(path):
        return False
    with open(path, 'rb') as f:
        f.seek(0, 2)
        f.seek(max(f.tell() - 64, 0))
        tail = f.read().rstrip(b'\x00')
    return not tail.endswith(b'\xff\xd9')


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that names the file when it cannot be decoded.

    OpenCV returns ``None`` for undecodable bytes (MMCV then asserts) and
    silently fills a truncated JPEG with grey; both raise
    :class:`CorruptImageError` here. Arguments are those of MMCV's transform.
    """

    def transform(self, results: dict) -> dict:
        filename = results['img_path']
        if _jpeg_truncated(filename):
            raise CorruptImageError(
                f'corrupt image {filename}: truncated JPEG (no end marker)')
        try:
            return super().transform(results)
        except AssertionError:
            raise CorruptImageError(
                f'corrupt image {filename}: cannot be decoded') from None


@TRANSFORMS.register_module()
class CheckedLoadAnnotations(LoadAnnotations):
    """MMSeg ``LoadAnnotations`` that checks the mask matches its image.

    Must follow the image loader. The mask is compared with the image as
    loaded (``ori_shape``), so it may also follow a ``Resize`` as in MMSeg's
    test pipelines. A mask of another size than its image is a
    :class:`ValueError` naming both files and shapes (MMSeg would otherwise
    fail later, far from the cause, or crop mismatched regions).
    """

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        mask_shape = tuple(results['gt_seg_map'].shape[:2])
        img_shape = results.get('ori_shape')
        if img_shape is not None and tuple(img_shape) != mask_shape:
            raise ValueError(
                f"mask {results.get('seg_map_path')} has size {mask_shape} "
                f"but its image {results.get('img_path')} has size "
                f'{tuple(img_shape)}')
        return results
