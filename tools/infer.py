"""Predict on images with a trained model: segmentation or classification.

MMSegmentation's ``demo/image_demo.py`` for many images and both
codebases: the config's ``default_scope`` picks MMSeg's ``MMSegInferencer``
or MMPretrain's ``ImageClassificationInferencer``, so any config of the
project works, whatever its backbone. For every image it writes into
``--out-dir``:

- segmentation: ``<name>.png``, the predicted mask with the dataset's
  palette (a paletted PNG like Pascal VOC's ``SegmentationClass``; pixel
  values are class indices), and ``<name>_overlay.png``, the image with the
  mask drawn over it (``--opacity``) and its class names;
- classification: ``<name>_overlay.png``, the image with the predicted class
  and score, and one ``predictions.json`` for all images (class, index,
  score).

    python tools/infer.py CONFIG CHECKPOINT IMAGE_OR_FOLDER... \\
        [--out-dir DIR] [--opacity 0.5] [--device cpu|cuda:0] \\
        [--cfg-options k=v ...]

A folder stands for the images directly in it (``.jpg``, ``.png``, ...).
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import grpo_rm_mm  # noqa: E402,F401  (shims + registration)
import mmcv  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from grpo_rm_mm.models.backbones.checkpoint_io import \
    load_checkpoint_file  # noqa: E402
from grpo_rm_mm.utils import (check_checkpoint,  # noqa: E402
                              check_checkpoint_fits, config_scope,
                              merge_cfg_options)
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.utils import ProgressBar  # noqa: E402
from PIL import Image  # noqa: E402

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
#: classification overlays of smaller images are drawn at this short side
SMALL_SIDE = 224


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Predict masks (segmentation) or classes '
        '(classification) of images with a trained model')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('images', nargs='+',
                        help='image files, or folders of images')
    parser.add_argument('--out-dir', default='work_dirs/infer',
                        help='where predictions are written '
                        '(default: %(default)s)')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the mask drawn over the image, in '
                        '(0, 1] (default: %(default)s)')
    parser.add_argument('--device', default=None,
                        help='cpu, cuda or cuda:N (default: cuda:0 when '
                        'CUDA is available, else cpu)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value')
    args = parser.parse_args(argv)
    if not 0 < args.opacity <= 1:
        parser.error(f'--opacity must be in (0, 1], got {args.opacity}')
    return args


def resolve_device(device) -> str:
    if device is None:
        return 'cuda:0' if torch.cuda.is_available() else 'cpu'
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: CUDA is not available on this '
                         'machine; use --device cpu')
    return device


def list_images(paths: List[str]) -> List[str]:
    """Files as given, folders expanded to their images (sorted)."""
    images = []
    for path in paths:
        if osp.isdir(path):
            found = sorted(
                osp.join(path, name) for name in os.listdir(path)
                if name.lower().endswith(IMAGE_SUFFIXES))
            if not found:
                raise FileNotFoundError(
                    f'no image ({", ".join(IMAGE_SUFFIXES)}) in folder '
                    f'{path}')
            images += found
        elif osp.isfile(path):
            images.append(path)
        else:
            raise FileNotFoundError(f'image not found: {path}')
    stems: Dict[str, str] = {}
    for image in images:
        stem = osp.splitext(osp.basename(image))[0]
        if stem in stems:
            raise ValueError(f'{stems[stem]} and {image} would write the '
                             'same output files: predict them separately')
        stems[stem] = image
    return images


def save_palette_mask(mask: np.ndarray, palette, path: str) -> None:
    """A paletted PNG (class index per pixel, colours from ``palette``);
    a 16-bit grey PNG when there are more classes than a palette holds."""
    if mask.max(initial=0) > 255 or not palette:
        mmcv.imwrite(mask.astype(np.uint16), path)
        return
    image = Image.fromarray(mask.astype(np.uint8), mode='P')
    flat = [int(c) for colour in palette[:256] for c in colour]
    image.putpalette(flat + [0] * (768 - len(flat)))
    image.save(path)


def check_weights(model, checkpoint: str) -> None:
    """The checkpoint must fit the config's model (the inferencers load
    with ``strict=False`` and would predict with random weights)."""
    check_checkpoint_fits(model, load_checkpoint_file(checkpoint),
                          checkpoint, complete=True)


def segment(cfg: Config, args, images: List[str]) -> None:
    from mmseg.apis import MMSegInferencer
    inferencer = MMSegInferencer(
        model=cfg, weights=args.checkpoint, device=args.device)
    inferencer.show_progress = False  # ours counts all the images
    check_weights(inferencer.model, args.checkpoint)
    meta = inferencer.model.dataset_meta
    visualizer = inferencer.visualizer
    visualizer.set_dataset_meta(meta['classes'], meta['palette'])
    visualizer.alpha = args.opacity
    progress = ProgressBar(len(images))
    for image in images:
        sample = inferencer(image, return_datasamples=True)
        stem = osp.splitext(osp.basename(image))[0]
        mask = sample.pred_sem_seg.data[0].cpu().numpy()
        save_palette_mask(mask, meta['palette'],
                          osp.join(args.out_dir, stem + '.png'))
        visualizer.add_datasample(
            stem, mmcv.imread(image, channel_order='rgb'), sample,
            draw_gt=False, draw_pred=True, with_labels=True,
            out_file=osp.join(args.out_dir, stem + '_overlay.png'))
        progress.update()


def classify(cfg: Config, args, images: List[str]) -> None:
    from mmpretrain import ImageClassificationInferencer
    inferencer = ImageClassificationInferencer(
        model=cfg, pretrained=args.checkpoint, device=args.device)
    check_weights(inferencer.model, args.checkpoint)
    visualizer = inferencer.visualizer
    if visualizer is None:  # the config has none
        from mmpretrain.visualization import UniversalVisualizer
        visualizer = UniversalVisualizer()
    predictions = []
    progress = ProgressBar(len(images))
    for image in images:
        (sample, ) = inferencer(image, return_datasamples=True)
        stem = osp.splitext(osp.basename(image))[0]
        label = int(sample.pred_score.argmax())
        classes = inferencer.classes
        predictions.append(dict(
            image=image,
            pred_label=label,
            pred_class=classes[label] if classes else str(label),
            pred_score=float(sample.pred_score[label])))
        rgb = mmcv.imread(image, channel_order='rgb')
        visualizer.visualize_cls(
            rgb, sample, classes=classes, draw_gt=False, draw_pred=True,
            draw_score=True, name=stem,
            # room for the text on small images
            resize=SMALL_SIDE if min(rgb.shape[:2]) < SMALL_SIDE else None,
            out_file=osp.join(args.out_dir, stem + '_overlay.png'))
        progress.update()
    with open(osp.join(args.out_dir, 'predictions.json'), 'w') as f:
        json.dump(predictions, f, indent=1)


def main(argv=None) -> None:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    check_checkpoint(args.checkpoint)
    images = list_images(args.images)
    args.device = resolve_device(args.device)
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    os.makedirs(args.out_dir, exist_ok=True)
    scope = config_scope(cfg)
    init_default_scope(scope)  # the registries the pipeline is built from
    if scope == 'mmseg':
        segment(cfg, args, images)
    else:
        classify(cfg, args, images)
    print(f'\nwrote the predictions of {len(images)} image(s) to '
          f'{args.out_dir}')


if __name__ == '__main__':
    main()
