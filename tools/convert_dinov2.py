"""Convert DINOv2 weights between Meta's and MMPretrain's key names.

Examples::

    # Meta's published file -> MMPretrain / grpo-rm-mm DINOv2 names
    python tools/convert_dinov2.py dinov2_vits14_pretrain.pth \
        dinov2_vits14_mmpretrain.pth
    # back to Meta's names (adds a zero mask_token for strict loading)
    python tools/convert_dinov2.py dinov2_vits14_mmpretrain.pth \
        dinov2_vits14_meta.pth --to meta

The ``DINOv2`` backbone loads either format directly; converting is only
needed for other tools (MMPretrain's ``VisionTransformer``, Meta's code).
"""
import argparse
import os
import os.path as osp

import grpo_rm_mm  # noqa: F401,I001  (compat shims before the stack)
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from grpo_rm_mm.models.backbones.dinov2_checkpoint import (
    META, MMPRETRAIN, infer_arch, mmpretrain_to_meta, to_mmpretrain)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a DINOv2 checkpoint between Meta key names '
        '(blocks.<i>.ls1.gamma, norm.weight, ...) and MMPretrain '
        "VisionTransformer names (layers.<i>.attn.gamma1.weight, ln1...). "
        'The source format is detected; whole-model checkpoints are '
        'reduced to their backbone.')
    parser.add_argument('src', help='checkpoint to read (either format)')
    parser.add_argument('dst', help='file to write')
    parser.add_argument(
        '--to',
        choices=[MMPRETRAIN, META],
        default=MMPRETRAIN,
        help='key names to write: mmpretrain (saved as {"state_dict": ...}'
        ', what the DINOv2 backbone and MMPretrain load) or meta (a plain '
        'state dict like the DINOv2 repository publishes). '
        'Default: %(default)s')
    parser.add_argument(
        '--prefix',
        default=None,
        help='take only the keys under this prefix (default: strip '
        '"module." and "backbone." when present)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    checkpoint = CheckpointLoader.load_checkpoint(args.src, map_location='cpu')
    state_dict, fmt = to_mmpretrain(checkpoint, args.prefix)
    arch = infer_arch(state_dict)
    if args.to == META:
        out = mmpretrain_to_meta(state_dict)
    else:
        out = dict(
            state_dict=state_dict,
            meta=dict(source=osp.basename(args.src), source_format=fmt))
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save(out, args.dst)
    print(f'{args.src} ({fmt}, {arch.describe()}) -> {args.dst} '
          f'({args.to}, {len(state_dict)} tensors)')


if __name__ == '__main__':
    main()
