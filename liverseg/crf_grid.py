"""The dense CRF of :mod:`liverseg.crf` as array operations on a stack of slices (``keras.ops``),
so that it runs where the networks run (a GPU) instead of slice by slice in pydensecrf.

The same energy and mean-field update as pydensecrf (Krähenbühl & Koltun, NeurIPS 2011: Potts
compatibility, a Gaussian and a bilateral kernel, each normalized symmetrically), with the
kernels' filtering done otherwise:

* the Gaussian (smoothness) kernel is a separable Gaussian blur of the marginals;
* the bilateral kernel is a bilateral grid (Chen, Paris & Durand, SIGGRAPH 2007): each pixel is
  splatted trilinearly into a coarse (y, x, grey) grid of one cell per ``bilateral_sxy`` pixels
  and ``bilateral_srgb`` grey levels, the grid is blurred along its three axes, and each pixel
  reads its value back trilinearly. The blur's width is chosen so that splat, blur and read
  together spread as a Gaussian of one cell.

pydensecrf filters both kernels with a permutohedral lattice, another approximation of the same
Gaussians, so the two marginals differ a little (``tests/test_crf_grid.py`` bounds by how much
on phantom slices; ``CRFParams.engine`` chooses).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from keras import ops

from liverseg.crf import CRFParams, grey_levels

#: the grid blur's variance, in cells²: with the trilinear splat's and read's 1/6 each, the
#: grid spreads a pixel as a Gaussian of variance 1 cell²
_GRID_BLUR_VARIANCE = 1.0 - 2.0 / 6.0


def dense_crf_stack(probabilities: np.ndarray, images: np.ndarray,
                    params: CRFParams | None = None) -> np.ndarray:
    """Refine ``(N, H, W)`` foreground probabilities with the dense CRF on their ``(N, H, W)``
    CT slices (HU, as :func:`liverseg.crf.dense_crf`); returns ``(N, H, W)`` float32 marginals.

    The inputs are checked by the caller (:func:`liverseg.prior.roi_priors`). On JAX the
    update is compiled once per stack shape."""
    params = params or CRFParams()
    probabilities = np.asarray(probabilities, np.float32)
    grey = np.stack([grey_levels(np.asarray(image, np.float32), params.window) for image in images])
    n, height, width = probabilities.shape
    dims = _grid_dims(height, width, params)
    index, weight = _grid_corners(grey, dims, params)
    blur = _gaussian_taps(math.sqrt(_GRID_BLUR_VARIANCE), _PAD)
    constants = (
        _gaussian_taps(params.gaussian_sxy, max(1, math.ceil(3 * params.gaussian_sxy))),
        index, weight, *(_band_matrix(d, blur) for d in dims))
    static = (dims, int(params.iterations), float(params.gaussian_compat),
              float(params.bilateral_compat), float(params.clip))
    refined = _compiled(_mean_field)(probabilities, *constants, static=static)
    return np.asarray(ops.convert_to_numpy(refined), np.float32)


def _mean_field(p, taps, index, weight, blur_y, blur_x, blur_g, *, static):
    """The mean-field iterations on the device: Potts, both kernels normalized symmetrically."""
    dims, iterations, gaussian_compat, bilateral_compat, clip = static
    unary = ops.stack([-ops.log(ops.clip(1.0 - p, clip, 1.0)),
                       -ops.log(ops.clip(p, clip, 1.0))], axis=-1)  # (N, H, W, 2)
    n = p.shape[0]

    def gaussian(x):  # separable blur, zero outside the slice (no pixel is there)
        channels = x.shape[-1]
        down = ops.tile(ops.reshape(taps, (-1, 1, 1, 1)), (1, 1, channels, 1))
        across = ops.tile(ops.reshape(taps, (1, -1, 1, 1)), (1, 1, channels, 1))
        return ops.depthwise_conv(ops.depthwise_conv(x, down, padding="same"), across,
                                  padding="same")

    def bilateral(x):  # splat into the grid, blur it along its three axes, read back
        channels = x.shape[-1]
        flat = ops.reshape(x, (1, -1, channels)) * weight  # (8, NHW, C)
        grid = ops.segment_sum(ops.reshape(flat, (-1, channels)), ops.reshape(index, (-1,)),
                               num_segments=n * int(np.prod(dims)))
        grid = ops.reshape(grid, (n, *dims, channels))
        grid = ops.einsum("ay,nyxgc->naxgc", blur_y, grid)
        grid = ops.einsum("bx,nyxgc->nybgc", blur_x, grid)
        grid = ops.einsum("eg,nyxgc->nyxec", blur_g, grid)
        read = ops.take(ops.reshape(grid, (-1, channels)), ops.reshape(index, (-1,)), axis=0)
        read = ops.sum(ops.reshape(read, (8, -1, channels)) * weight, axis=0)
        return ops.reshape(read, x.shape)

    ones = ops.ones((*p.shape, 1))
    kernels = []
    for filter_, compat in ((gaussian, gaussian_compat), (bilateral, bilateral_compat)):
        norm = ops.rsqrt(filter_(ones) + 1e-20)
        kernels.append((filter_, norm, compat))
    q = ops.softmax(-unary, axis=-1)
    for _ in range(iterations):
        message = sum(compat * norm * filter_(norm * q) for filter_, norm, compat in kernels)
        q = ops.softmax(message - unary, axis=-1)
    return q[..., 1]


def _compiled(function):
    """``function`` compiled by XLA on JAX (its ``static`` keyword a compile-time constant),
    as it is elsewhere."""
    import keras

    if keras.backend.backend() != "jax":
        return function
    import jax

    return _jitted(function, jax)


@functools.lru_cache(maxsize=None)
def _jitted(function, jax):
    return jax.jit(function, static_argnames=("static",))


#: grid cells beyond the data on each side: the grid blur's reach
_PAD = 2


def _grid_dims(height: int, width: int, params: CRFParams) -> tuple[int, int, int]:
    """The bilateral grid's (y, x, grey) size: one cell per ``bilateral_sxy`` pixels and
    ``bilateral_srgb`` grey levels (0..255), plus the blur's reach on each side."""
    return tuple(int(np.floor(extent / scale)) + 2 + 2 * _PAD for extent, scale in (
        (height - 1, params.bilateral_sxy), (width - 1, params.bilateral_sxy),
        (255.0, params.bilateral_srgb)))


def _grid_corners(grey: np.ndarray, dims, params: CRFParams) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's 8 grid corners: flat indices ``(8, N*H*W)`` int32 and trilinear weights
    ``(8, N*H*W, 1)`` float32."""
    n, height, width = grey.shape
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    coords = [np.broadcast_to(yy / params.bilateral_sxy, grey.shape),
              np.broadcast_to(xx / params.bilateral_sxy, grey.shape), grey / params.bilateral_srgb]
    base = [np.floor(c).astype(np.int64) + _PAD for c in coords]
    frac = [(c - np.floor(c)).astype(np.float32) for c in coords]
    cells = int(np.prod(dims))
    index, weight = [], []
    for corner in range(8):
        flat = np.arange(n, dtype=np.int64).reshape(n, 1, 1) * cells
        w = np.ones(grey.shape, np.float32)
        for axis in range(3):
            bit = (corner >> axis) & 1
            flat = flat + (base[axis] + bit) * int(np.prod(dims[axis + 1:]))
            w = w * (frac[axis] if bit else 1.0 - frac[axis])
        index.append(flat.reshape(-1))
        weight.append(w.reshape(-1))
    return np.stack(index).astype(np.int32), np.stack(weight)[..., None]


def _gaussian_taps(sigma: float, radius: int) -> np.ndarray:
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.exp(-0.5 * (offsets / sigma) ** 2).astype(np.float32)


def _band_matrix(n: int, taps: np.ndarray) -> np.ndarray:
    """``(n, n)`` matrix that convolves a length-``n`` axis with ``taps`` (zero outside)."""
    radius = len(taps) // 2
    matrix = np.zeros((n, n), np.float32)
    for offset, tap in zip(range(-radius, radius + 1), taps):
        matrix += np.eye(n, k=offset, dtype=np.float32) * np.float32(tap)
    return matrix
