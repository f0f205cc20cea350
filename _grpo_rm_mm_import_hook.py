"""Start-up import hook of grpo-rm-mm (installed with the package).

A ``.pth`` file in site-packages runs :func:`install` when Python starts, so
that scripts importing MMSegmentation or MMPretrain before ``grpo_rm_mm``
work on the CPU stack too (mmcv-lite has no ``mmcv._ext``; the torchvision
wheel's ops may not load next to a CPU torch). The hook costs nothing until
``torchvision`` or ``mmcv._ext`` is imported; then it loads
``grpo_rm_mm/compat.py`` alone (without the package) and lets
:func:`grpo_rm_mm.compat.import_hook_spec` decide: the workarounds live
there, and act only where their problem is present.

``GRPO_RM_MM_NO_IMPORT_HOOK=1`` turns the hook off. This module imports
nothing heavy: it runs in every interpreter of the environment.
"""
import importlib.util
import os
import sys

DISABLE_VARIABLE = 'GRPO_RM_MM_NO_IMPORT_HOOK'
#: the imports the hook reacts to (also ``compat.IMPORT_HOOK_MODULES``)
WATCHED = frozenset(('torchvision', 'mmcv._ext'))


def _compat():
    """``grpo_rm_mm.compat``, loaded from its file if the package is not
    imported yet (the package's ``__init__`` would import the stack)."""
    module = sys.modules.get('grpo_rm_mm.compat')
    if module is not None:
        return module
    package = importlib.util.find_spec('grpo_rm_mm')  # does not import it
    if package is None or not package.submodule_search_locations:
        return None
    path = os.path.join(list(package.submodule_search_locations)[0],
                        'compat.py')
    spec = importlib.util.spec_from_file_location('grpo_rm_mm.compat', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules['grpo_rm_mm.compat'] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules['grpo_rm_mm.compat']
        raise
    return module


class GrpoRmMmImportHook:
    """A meta path finder that answers for :data:`WATCHED` imports only."""

    def __init__(self):
        self._busy = False  # the compat checks import things themselves

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in WATCHED or self._busy:
            return None
        self._busy = True
        try:
            # another copy of the package (an older checkout on the path)
            # may have a compat module without the hook's entry point
            decide = getattr(_compat(), 'import_hook_spec', None)
            return decide(fullname, path) if decide else None
        finally:
            self._busy = False


def install() -> None:
    """Put the hook first on ``sys.meta_path`` (once)."""
    if os.environ.get(DISABLE_VARIABLE, '') not in ('', '0'):
        return
    if not any(type(f).__name__ == GrpoRmMmImportHook.__name__
               for f in sys.meta_path):
        sys.meta_path.insert(0, GrpoRmMmImportHook())
