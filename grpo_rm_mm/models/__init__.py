from . import backbones, decode_heads, losses  # noqa: F401
