"""Runner construction shared by ``tools/train.py`` and ``tools/test.py``."""
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..compat import prepare_distributed


def build_runner(cfg: Config) -> Runner:
    """Prepare distributed running (CPU workaround), then build the runner
    as MMSeg's tools do (``runner_type`` picks a registered one)."""
    prepare_distributed(cfg)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
