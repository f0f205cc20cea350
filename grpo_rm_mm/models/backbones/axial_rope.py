"""2-D axial rotary position embedding (RoPE), as DINOv3 uses it.

Each attention head's ``D`` channels are split in two halves that form
``D / 2`` rotation pairs ``(t, t + D / 2)`` (the "rotate half" layout). The
first ``D / 4`` pairs turn with the patch's row coordinate ``y``, the next
``D / 4`` with its column coordinate ``x``; pair ``k`` of an axis turns by
``2 pi c / base ** (4 k / D)`` for the coordinate ``c`` of the patch centre
on that axis, normalised to [-1, 1] by the grid's own size (so a grid of any
size spans the same range). Only the patch tokens are rotated; the caller
leaves class and register tokens out.

Training-time augmentation of the coordinates (a shift, a per-axis jitter
and a shared rescale, all off unless given) follows DINOv3's pre-training.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

SinCos = Tuple[Tensor, Tensor]


def rope_periods(head_dim: int,
                 base: float = 100.,
                 device=None,
                 dtype: torch.dtype = torch.float32) -> Tensor:
    """Periods ``base ** (4 k / head_dim)``, ``k < head_dim / 4``.

    Args:
        head_dim (int): Channels per head; a multiple of 4.
        base (float): Defaults to 100 (DINOv3).
        device: Device of the result.
        dtype: Defaults to float32.

    Returns:
        Tensor: (head_dim // 4, ).
    """
    if head_dim % 4:
        raise ValueError(f'2-D RoPE needs a head dimension divisible by 4, '
                         f'got {head_dim}')
    exponents = torch.arange(
        head_dim // 4, device=device, dtype=dtype) * (4 / head_dim)
    return base**exponents


def patch_coords(height: int,
                 width: int,
                 device=None,
                 dtype: torch.dtype = torch.float32) -> Tensor:
    """Centres of a ``height x width`` patch grid in [-1, 1], row-major.

    Returns:
        Tensor: (height * width, 2), columns ``(y, x)``.
    """
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width
    grid = torch.stack(torch.meshgrid(ys, xs, indexing='ij'), dim=-1)
    return 2 * grid.flatten(0, 1) - 1


def augment_coords(coords: Tensor,
                   shift: Optional[float] = None,
                   jitter: Optional[float] = None,
                   rescale: Optional[float] = None) -> Tensor:
    """DINOv3's training-time coordinate augmentation, one draw per call.

    Args:
        coords (Tensor): (N, 2) coordinates.
        shift (float, optional): add a uniform offset in [-shift, shift]
            per axis.
        jitter (float, optional): multiply each axis by its own
            log-uniform factor in [1 / jitter, jitter].
        rescale (float, optional): multiply both axes by one log-uniform
            factor in [1 / rescale, rescale].

    Returns:
        Tensor: the augmented coordinates (a new tensor).
    """
    dd = dict(device=coords.device, dtype=coords.dtype)
    if shift is not None:
        coords = coords + torch.empty(2, **dd).uniform_(-shift, shift)
    if jitter is not None:
        bound = math.log(jitter)
        coords = coords * torch.empty(2, **dd).uniform_(-bound, bound).exp()
    if rescale is not None:
        bound = math.log(rescale)
        coords = coords * torch.empty(1, **dd).uniform_(-bound, bound).exp()
    return coords


def rope_sin_cos(coords: Tensor, periods: Tensor) -> SinCos:
    """Sines and cosines of every channel's angle, rotate-half layout.

    Args:
        coords (Tensor): (N, 2) ``(y, x)`` coordinates.
        periods (Tensor): (D / 4, ) periods.

    Returns:
        tuple[Tensor, Tensor]: ``sin``, ``cos``, each (N, D): channels
        ``[y angles, x angles]`` twice.
    """
    angles = 2 * math.pi * coords[:, :, None] / periods  # (N, 2, D / 4)
    angles = angles.flatten(1).repeat(1, 2)
    return angles.sin(), angles.cos()


def apply_rope(x: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
    """Rotate channel pairs ``(t, t + D / 2)`` of ``x`` by the angles.

    Computed in the wider of the two dtypes (float32 under autocast, as
    DINOv3 does), returned in ``x``'s dtype.

    Args:
        x (Tensor): (..., N, D) queries or keys of the patch tokens.
        sin (Tensor): (N, D), from :func:`rope_sin_cos`.
        cos (Tensor): (N, D).

    Returns:
        Tensor: the rotated ``x``.
    """
    wide = x.to(torch.promote_types(x.dtype, sin.dtype))
    first, second = wide.chunk(2, dim=-1)
    rotated = torch.cat((-second, first), dim=-1)
    return (wide * cos + rotated * sin).to(x.dtype)


class AxialRoPE2d(nn.Module):
    """DINOv3's 2-D axial RoPE: sines and cosines for a patch grid.

    No parameters and no state: the periods depend on ``head_dim`` and
    ``base`` only, and are computed on the fly in the requested dtype.

    Args:
        head_dim (int): Channels per attention head (a multiple of 4).
        base (float): Period base. Defaults to 100.
        shift_coords (float, optional): Training-time coordinate shift.
            Defaults to None (off).
        jitter_coords (float, optional): Training-time per-axis scale
            factor bound (>= 1). Defaults to None (off).
        rescale_coords (float, optional): Training-time shared scale factor
            bound (>= 1); DINOv3 pre-trained with 2. Defaults to None (off).
    """

    def __init__(self,
                 head_dim: int,
                 base: float = 100.,
                 shift_coords: Optional[float] = None,
                 jitter_coords: Optional[float] = None,
                 rescale_coords: Optional[float] = None) -> None:
        super().__init__()
        rope_periods(head_dim, base, device='meta')  # checks head_dim
        for name, value, low in (('shift_coords', shift_coords, 0.),
                                 ('jitter_coords', jitter_coords, 1.),
                                 ('rescale_coords', rescale_coords, 1.)):
            if value is not None and not value >= low:
                raise ValueError(f'AxialRoPE2d {name} must be >= {low} or '
                                 f'None, got {value!r}')
        self.head_dim = head_dim
        self.base = base
        self.shift_coords = shift_coords
        self.jitter_coords = jitter_coords
        self.rescale_coords = rescale_coords

    @property
    def augments(self) -> bool:
        """Whether the coordinates are randomly augmented in training."""
        return any(v is not None for v in (self.shift_coords,
                                           self.jitter_coords,
                                           self.rescale_coords))

    def forward(self,
                grid: Tuple[int, int],
                device=None,
                dtype: torch.dtype = torch.float32) -> SinCos:
        """Sines and cosines for a ``(height, width)`` patch grid.

        Returns:
            tuple[Tensor, Tensor]: ``sin``, ``cos``, each
            (height * width, head_dim), row-major over the grid.
        """
        coords = patch_coords(*grid, device=device, dtype=dtype)
        if self.training and self.augments:
            coords = augment_coords(coords, self.shift_coords,
                                    self.jitter_coords, self.rescale_coords)
        periods = rope_periods(self.head_dim, self.base, device, dtype)
        return rope_sin_cos(coords, periods)

    def extra_repr(self) -> str:
        return f'head_dim={self.head_dim}, base={self.base}'
