"""Time and peak memory of ``GRPORMLoss`` versus MMSeg's ``CrossEntropyLoss``.

Both losses run forward + backward on the same logits (a leaf tensor with
``requires_grad``) and labels (5% ignored); the table gives, per size, the
time of each and the ratio, then the peak memory of each and the ratio.
Ratios are measured in the same run, with the cases interleaved; time is
the minimum over the repetitions by default (the intrinsic cost on a
machine shared with other jobs; ``--stat median`` for the median). Cases:
``grpo`` is on-policy (no old logits, the default ``interval=1``),
``grpo-old`` receives old logits (a lagging old model); each eagerly and
with the loss's ``compile=True`` (``+c``; the warm-up call compiles).
Targets (issue 10): compiled <= 1.3x CE time, eager <= 2.0x, peak memory
<= 1.5x.

Memory is the peak *extra* memory of one forward + backward above what was
allocated before it (the logits, old logits and labels), so the gradient
tensor counts for both losses:

- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.
- CPU: each case runs in a fresh subprocess with glibc's
  ``MALLOC_MMAP_THRESHOLD_=65536``, so every tensor buffer above 64 KiB is
  mmapped and returned to the OS when freed, and the resident set follows
  the live tensors. After a warm-up call the peak resident set (``VmHWM``)
  is reset through ``/proc/self/clear_refs``; the peak is ``VmHWM`` after
  the measured call minus ``VmRSS`` before it. For the small size this is
  coarse (page granularity, allocator noise of a few hundred KiB).

Usage::

    python benchmarks/bench_loss.py                       # both sizes, CPU
    python benchmarks/bench_loss.py --sizes 2,21,64,64 --reps 10
    python benchmarks/bench_loss.py --device cuda
    python benchmarks/bench_loss.py --options --sizes 8,21,512,512
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
import warnings

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import grpo_rm_mm  # noqa: E402,F401  (compat shims before mmseg)
from grpo_rm_mm.models.losses import grpo_rm_eager as eager  # noqa: E402

CASES = ('ce', 'grpo', 'grpo-old', 'grpo+c', 'grpo-old+c')
#: ``--options``: the GRPO-family options (issue 17), each with old logits
#: (where the clips act), as ``grpo-old:<name>`` cases
OPTIONS = {
    'batch': dict(scale_rewards='batch'),
    'none': dict(scale_rewards='none'),
    'clip-high': dict(clip_eps_high=0.28),
    'dual': dict(dual_clip=3.0),
    'lambda': dict(uniformity_weight=0.5),
    'G=8': dict(group_size=8),
}


def option_cases():
    return tuple(f'grpo-old:{name}{path}' for path in ('', '+c')
                 for name in OPTIONS)


def build_losses(cases=CASES):
    """CE and one GRPO-RM loss per case (its options, compiled or not)."""
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # avg_non_ignore notice
        losses = {'ce': MODELS.build(dict(type='CrossEntropyLoss'))}
    for case in cases:
        if case != 'ce':
            options = OPTIONS.get(case.split(':')[-1].split('+')[0], {})
            losses[case] = MODELS.build(dict(
                type='GRPORMLoss', compile=case.endswith('+c'), **options))
    return losses


def make_inputs(size, device):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(size, generator=g).mul_(2)
    old = logits + 0.3 * torch.randn(size, generator=g)
    labels = torch.randint(0, size[1], size[:1] + size[2:], generator=g)
    labels[torch.rand(labels.shape, generator=g) < 0.05] = 255
    return (logits.to(device).requires_grad_(), old.to(device),
            labels.to(device))


def run_case(case, losses, logits, old, labels):
    logits.grad = None
    if case == 'ce':
        loss = losses['ce'](logits, labels, ignore_index=255)
    else:
        loss = losses[case](
            logits, labels, ignore_index=255,
            old_logits=old if case.startswith('grpo-old') else None)
    loss.backward()
    logits.grad = None


def sync(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_cases(size, device, reps, cases, stat='min'):
    losses = build_losses(cases)
    logits, old, labels = make_inputs(size, device)
    times = {c: [] for c in cases}
    for c in cases:  # warm-up
        run_case(c, losses, logits, old, labels)
    for _ in range(reps):
        for c in cases:  # interleaved, so load changes hit every case
            sync(device)
            start = time.perf_counter()
            run_case(c, losses, logits, old, labels)
            sync(device)
            times[c].append(time.perf_counter() - start)
    reduce = min if stat == 'min' else statistics.median
    return {c: reduce(t) for c, t in times.items()}


def _status_bytes(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'{field} not in /proc/self/status')


def memory_in_process(size, device, case):
    """Peak extra bytes of one forward + backward (see module docstring)."""
    losses = build_losses((case, ))
    logits, old, labels = make_inputs(size, device)
    run_case(case, losses, logits, old, labels)  # warm-up
    if device.startswith('cuda'):
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run_case(case, losses, logits, old, labels)
        sync(device)
        return torch.cuda.max_memory_allocated() - base
    base = _status_bytes('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current resident set
    run_case(case, losses, logits, old, labels)
    return _status_bytes('VmHWM') - base


def memory_case(size, device, case):
    if device.startswith('cuda'):
        return memory_in_process(size, device, case)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    cmd = [
        sys.executable,
        osp.abspath(__file__), '--_memory-case', case, '--sizes',
        ','.join(map(str, size)), '--device', device
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])['bytes']


def parse_size(text):
    size = tuple(int(v) for v in text.split(','))
    if len(size) < 2:
        raise argparse.ArgumentTypeError(f'bad size {text!r}')
    return size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', nargs='+', type=parse_size,
                        default=[(8, 21, 512, 512), (2, 21, 64, 64)],
                        help='N,C,H,W (or N,C) sizes')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--reps', type=int, default=5)
    parser.add_argument('--stat', default='min', choices=['min', 'median'],
                        help='statistic of the repetitions (time)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (CPU)')
    parser.add_argument('--no-memory', action='store_true')
    parser.add_argument('--options', action='store_true',
                        help='also each GRPO-family option (old logits, '
                        'eager and compiled); the last column is its time '
                        'over the default loss on the same path')
    parser.add_argument('--_memory-case', dest='memory_case',
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.memory_case:  # child process of memory_case
        print(json.dumps(dict(bytes=memory_in_process(
            args.sizes[0], args.device, args.memory_case))))
        return

    print(f'torch {torch.__version__}, device {args.device}, '
          f'{torch.get_num_threads()} threads, {args.stat} of {args.reps} '
          f'reps, chunk {eager.CHUNK_NUMEL} elements')
    header = (f'{"size":>16} {"case":>18} {"CE ms":>8} '
              f'{"GRPO ms":>8} {"time x":>7} {"CE MB":>8} {"GRPO MB":>8} '
              f'{"mem x":>6}')
    print(header)
    print('-' * len(header))
    cases = CASES + (option_cases() if args.options else ())
    if args.options:  # one compiled graph per option set and input kind
        torch._dynamo.config.cache_size_limit = 64
    for size in args.sizes:
        times = time_cases(size, args.device, args.reps, cases, args.stat)
        mems = {} if args.no_memory else {
            c: memory_case(size, args.device, c)
            for c in cases
        }
        for case in cases[1:]:
            row = (f'{"x".join(map(str, size)):>16} {case:>18} '
                   f'{times["ce"] * 1e3:8.1f} '
                   f'{times[case] * 1e3:8.1f} '
                   f'{times[case] / times["ce"]:7.2f}')
            if mems:
                row += (f' {mems["ce"] / 2**20:8.1f} '
                        f'{mems[case] / 2**20:8.1f} '
                        f'{mems[case] / max(mems["ce"], 1):6.2f}')
            if ':' in case:  # against the default loss on the same path
                default = 'grpo-old' + ('+c' if case.endswith('+c') else '')
                row += f'  {times[case] / times[default]:6.2f}x default'
            print(row, flush=True)


if __name__ == '__main__':
    main()
