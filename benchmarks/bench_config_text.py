"""Time of ``Config.pretty_text`` (logged and dumped by MMEngine's Runner at
every start) with yapf as MMEngine calls it, and with compat's
``config_long_strings`` shim, for data roots of growing length.

The demo config is loaded and its data roots and work dir set to a path of
the given length; the two formatters run interleaved, each ``--reps`` times
(minimum printed), and their texts are checked to be the same config.

Usage::

    python benchmarks/bench_config_text.py [--lengths 12 40 60 90 120]
        [--reps 3]
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine import Config  # noqa: E402
from mmengine.config import config as config_module  # noqa: E402

import grpo_rm_mm  # noqa: E402,F401
from grpo_rm_mm import compat  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'demo',
                  'grpo-rm_dinov2-tiny_1xb8-300_synthetic-voc-112x112.py')


def config_with_root(length: int) -> Config:
    root = ('/data/' + 'x' * length)[:length]
    cfg = Config.fromfile(CONFIG)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = root
    cfg.work_dir = root + '/work'
    return cfg


def timed_text(cfg: Config, formatter) -> tuple:
    config_module.FormatCode = formatter
    start = time.perf_counter()
    text = cfg.pretty_text
    return time.perf_counter() - start, text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--lengths', type=int, nargs='+',
                        default=[12, 40, 60, 90, 120])
    parser.add_argument('--reps', type=int, default=3)
    args = parser.parse_args()
    shimmed = config_module.FormatCode
    stock = getattr(shimmed, '__wrapped__', None)
    if stock is None:
        sys.exit('the config_long_strings shim is not applied here '
                 f'(applied: {compat.APPLIED})')
    print('| data root chars | yapf (MMEngine) ms | with the shim ms | '
          'speed-up |')
    print('|---|---|---|---|')
    try:
        for length in args.lengths:
            cfg = config_with_root(length)
            times = {stock: [], shimmed: []}
            texts = {}
            for _ in range(args.reps):
                for formatter in (stock, shimmed):
                    seconds, texts[formatter] = timed_text(cfg, formatter)
                    times[formatter].append(seconds)
            same = (Config.fromstring(texts[stock], '.py').to_dict() ==
                    Config.fromstring(texts[shimmed], '.py').to_dict())
            if not same:
                sys.exit(f'length {length}: the two texts differ as configs')
            old, new = min(times[stock]), min(times[shimmed])
            print(f'| {length} | {old * 1e3:.0f} | {new * 1e3:.0f} | '
                  f'{old / new:.1f}x |')
    finally:
        config_module.FormatCode = shimmed


if __name__ == '__main__':
    main()
