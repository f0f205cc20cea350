"""Install grpo-rm-mm.

``pip install -e .`` installs the OpenMMLab stack but never torch,
torchvision or mmcv, so a user's own CUDA build is never replaced (the
OpenMMLab convention). Install those first: ``make install`` does it for the
CPU stack from ``requirements/cpu.txt``; GPU users follow the README.
"""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name):
    """Requirement lines of ``requirements/<name>.txt``, comments dropped."""
    lines = []
    with open(osp.join(HERE, 'requirements', name + '.txt')) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                lines.append(line)
    return lines


version = {}
with open(osp.join(HERE, 'grpo_rm_mm', 'version.py')) as f:
    exec(f.read(), version)

setup(
    name='grpo-rm-mm',
    version=version['__version__'],
    description='GRPO-RM fine-tuning of DINOv2 for MMSegmentation and '
    'MMPretrain',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['grpo_rm_mm', 'grpo_rm_mm.*']),
    python_requires='>=3.8',
    install_requires=read_requirements('runtime'),
    extras_require={
        'cpu': read_requirements('cpu'),
        'tests': read_requirements('tests'),
    },
    license='Apache-2.0',
)
