"""Convert DINOv2 weights of any published format to MMPretrain's or Meta's
key names.

Reads Meta's ``.pth``, timm's ``.pth`` / ``.safetensors`` (with registers
and ViT-g too), HuggingFace transformers' ``model.safetensors`` /
``pytorch_model.bin`` (or their model folder; ``Dinov2Model`` and
``Dinov2WithRegistersModel``) and MMPretrain / MMSeg checkpoints; the format
is detected from the keys. Examples::

    # any format -> MMPretrain / grpo-rm-mm DINOv2 names
    python tools/convert_dinov2.py dinov2_vits14_pretrain.pth \
        dinov2_vits14_mmpretrain.pth
    python tools/convert_dinov2.py ~/hf/dinov2-small/model.safetensors \
        dinov2_vits14_mmpretrain.pth
    # -> Meta's names (adds a zero mask_token for strict loading)
    python tools/convert_dinov2.py model.safetensors dinov2_meta.pth \
        --to meta

The ``DINOv2`` backbone loads every one of these directly; converting is
only needed for other tools (MMPretrain's ``VisionTransformer``, Meta's
code).
"""
import argparse
import os
import os.path as osp

import grpo_rm_mm  # noqa: F401,I001  (compat shims before the stack)
import torch

from grpo_rm_mm.models.backbones.checkpoint_io import load_checkpoint_file
from grpo_rm_mm.models.backbones.dinov2_checkpoint import (
    FORMATS, META, MMPRETRAIN, infer_arch, mmpretrain_to_meta, to_mmpretrain)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a DINOv2 checkpoint of any published format '
        f'({", ".join(FORMATS)}; .pth, .bin or .safetensors) to Meta key '
        'names (blocks.<i>.ls1.gamma, norm.weight, ...) or MMPretrain '
        "VisionTransformer names (layers.<i>.attn.gamma1.weight, ln1...). "
        'The source format is detected; whole-model checkpoints are '
        'reduced to their backbone.')
    parser.add_argument(
        'src', help='checkpoint to read (any format; a transformers model '
        'folder too)')
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
        '"module.", "backbone.", "dinov2." when present)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    checkpoint = load_checkpoint_file(args.src, map_location='cpu')
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
    # contiguous copies: safetensors' memory maps and views of a split
    # tensor must not be saved as views of their source
    out_tensors = {k: v.contiguous() for k, v in
                   (out['state_dict'] if args.to == MMPRETRAIN else
                    out).items()}
    if args.to == MMPRETRAIN:
        out['state_dict'] = out_tensors
    else:
        out = out_tensors
    torch.save(out, args.dst)
    print(f'{args.src} ({fmt}, {arch.describe()}) -> {args.dst} '
          f'({args.to}, {len(state_dict)} tensors)')


if __name__ == '__main__':
    main()
