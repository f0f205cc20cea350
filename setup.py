"""Install grpo-rm-mm.

``pip install -e .`` installs the OpenMMLab stack but never torch,
torchvision or mmcv, so a user's own CUDA build is never replaced (the
OpenMMLab convention). Install those first: ``make install`` does it for the
CPU stack from ``requirements/cpu.txt``; GPU users follow the README.

The install also puts ``grpo_rm_mm_import_hook.pth`` into site-packages: it
runs ``_grpo_rm_mm_import_hook.install()`` at start-up, so that scripts that
import MMSeg / MMPretrain before ``grpo_rm_mm`` get the compatibility shims
they need (see ``grpo_rm_mm.compat.import_hook_spec``), in regular and
editable installs alike.
"""
import os.path as osp

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))

IMPORT_HOOK_PTH = 'grpo_rm_mm_import_hook.pth'
# one line, run by site.py; a missing module must not print errors at every
# start-up (e.g. after a partial uninstall)
IMPORT_HOOK_LINE = (
    'import sys; exec("try:\\n import _grpo_rm_mm_import_hook as h\\n'
    'except ImportError:\\n h = None\\nif h:\\n h.install()")\n')


class BuildPyWithImportHook(build_py):
    """Also write the start-up hook's ``.pth`` at the wheel's root."""

    def run(self):
        super().run()
        if not getattr(self, 'editable_mode', False):
            with open(osp.join(self.build_lib, IMPORT_HOOK_PTH), 'w') as f:
                f.write(IMPORT_HOOK_LINE)


class _WithImportHookPth:
    """Wraps setuptools' editable strategy to add the ``.pth`` file to the
    editable wheel (its name sorts after the editable finder's ``.pth``,
    which site.py runs first)."""

    def __init__(self, strategy):
        self.strategy = strategy

    def __call__(self, wheel, files, mapping):
        self.strategy(wheel, files, mapping)
        wheel.writestr(IMPORT_HOOK_PTH, IMPORT_HOOK_LINE)

    def __enter__(self):
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.strategy.__exit__(*exc_info)


cmdclass = {'build_py': BuildPyWithImportHook}
try:
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:  # setuptools < 64: no PEP 660 editable installs
    editable_wheel = None
if editable_wheel is not None and hasattr(editable_wheel, '_select_strategy'):

    class EditableWheelWithImportHook(editable_wheel):

        def _select_strategy(self, *args, **kwargs):
            return _WithImportHookPth(
                super()._select_strategy(*args, **kwargs))

    cmdclass['editable_wheel'] = EditableWheelWithImportHook


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
    py_modules=['_grpo_rm_mm_import_hook'],
    cmdclass=cmdclass,
    python_requires='>=3.8',
    install_requires=read_requirements('runtime'),
    extras_require={
        'cpu': read_requirements('cpu'),
        'tests': read_requirements('tests'),
        # TensorBoard logging: tools/train.py --vis tensorboard
        'tensorboard': ['tensorboard'],
    },
    license='Apache-2.0',
)
