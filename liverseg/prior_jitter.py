"""Prior jitter and dropout: training priors that are sometimes too small, shifted or missing.

The tuning network learns from ROI priors made by a localizer (:mod:`liverseg.prior`). When
those priors are always about right, the tuner learns to trust the box: on a scan unlike its
training data (issue 17: a real CT after training on phantoms) a prior that leaves a third of
the liver outside the box caps the tuner at two thirds of the liver. Jitter teaches it to
follow the image where the box is wrong: a share of the *training* priors of every epoch is
perturbed, each slice anew every epoch, in one of these ways (``kinds``):

``"shrink"``
    The prior's bounding box (of all its foreground, so one box in the default ``bbox``
    mode) made smaller: each side times ``1 - f``, ``f`` drawn uniformly from ``shrink``
    (the area times ``(1 - f)²``), at a uniformly drawn place inside the original box; the
    prior keeps what lies inside the smaller box. Part of the liver falls outside, on any side.
``"shift"``
    The prior moved by ``f`` of its bounding box's size (``f`` uniform in ``shift``) in a
    uniformly drawn direction ``θ``: ``dy = round(f · height · sin θ)``,
    ``dx = round(f · width · cos θ)`` pixels; what leaves the slice is lost, what it uncovers
    is 0.
``"drop"``
    The prior is missing: emptied (all 0), which is what :func:`liverseg.prior.roi_prior`
    gives when the localizer finds nothing — the case the tuner meets at inference — so the
    tuner learns to segment the liver with no box at all. This is the meaning of "missing"
    (the paper's ConvBox multiplies by the prior's features, so an empty prior is the hard one).
``"fill"`` (not a default)
    The prior made the whole slice (all 1): a box that says nothing about where the liver is.

A prior with no foreground stays as it is under ``shrink``, ``shift`` and ``drop``.

Determinism: every draw of a slice comes from ``numpy.random.default_rng((seed, epoch, 13,
row))``, ``row`` the slice's index in the training arrays, so it does not depend on which
batch the slice falls in: a killed run resumes to the same weights
(:func:`liverseg.train.loop.fit`), and another epoch perturbs other slices in other ways (a
slice read twice in one epoch, as ``train.positive_share`` may, is perturbed alike both times).
Only :func:`liverseg.train.loop.fit`'s training batches are perturbed (its ``augment``);
validation, test and inference priors never are. Settings:
:class:`PriorJitterConfig`, the ``train.prior_jitter`` section of the settings tree (off by
default). Why: issue 17 (a tuner that can disagree with its prior); the book does not yet
measure it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from liverseg.config._base import Pair, Section, setting

KINDS = ("shrink", "shift", "drop", "fill")
NONE = "none"  # the kind of a slice left as it is
_STREAM = 13  # separates these draws from fit's shuffle (seed, epoch) and dropout (seed, epoch, 7)


@dataclass
class PriorJitterConfig(Section):
    """``train.prior_jitter``: how the tuning network's training priors are perturbed.

    Args:
        share: the probability (0–1) that a training slice's prior is perturbed in an epoch,
            drawn anew for every slice and epoch; 0 (the default): no jitter, the paper.
        kinds: the perturbations, one drawn uniformly per perturbed slice, among
            ``"shrink"``, ``"shift"``, ``"drop"`` (the prior emptied) and ``"fill"`` (the prior
            made the whole slice); see :mod:`liverseg.prior_jitter`.
        shrink: ``(low, high)``, ``0 <= low <= high < 1``: the fraction by which each side of
            the prior's box shrinks.
        shift: ``(low, high)``, ``0 <= low <= high``: the move, as a fraction of the box's
            height (vertically) and width (horizontally).

    Raises :class:`~liverseg.errors.SettingError` naming the setting for a value out of range.
    """

    share: float = setting(0.0, at_least=0, at_most=1)
    kinds: tuple[str, ...] = setting(("shrink", "shift", "drop"), items=KINDS, nonempty=True,
                                     distinct=True)
    shrink: tuple[float, float] = setting((0.2, 0.5), pair=Pair(at_least=0, below=1, floats=True))
    shift: tuple[float, float] = setting((0.1, 0.4), pair=Pair(at_least=0, floats=True))

    _section = "train.prior_jitter"

    @property
    def active(self) -> bool:
        """Whether any prior is ever perturbed (``share`` > 0)."""
        return self.share > 0


@dataclasses.dataclass(frozen=True)
class Draws:
    """What :func:`draw` decided for each row, arrays ``(B,)``: ``kind`` (``"none"`` or one
    of :data:`KINDS`), ``fraction`` (the shrink or shift fraction; 0 for the other kinds), and
    ``place``, ``turn``, two uniform numbers in [0, 1): where a shrunk box lies in the room
    the original leaves it, along y (``place``) and x (``turn``); a shift's direction
    ``θ = 2π · turn``."""

    kind: np.ndarray
    fraction: np.ndarray
    place: np.ndarray
    turn: np.ndarray


def draw(rows, settings: PriorJitterConfig, seed: int, epoch: int) -> Draws:
    """The perturbation of each of ``rows`` (training row indices, ``(B,)`` ints ≥ 0) in
    ``epoch`` of a run with ``seed``: a function of ``(seed, epoch, row)`` alone."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if len(rows) and rows.min() < 0:
        raise ValueError(f"rows must be indices >= 0, got {rows.min()}")
    kind = np.full(len(rows), NONE, dtype=object)
    fraction, place, turn = (np.zeros(len(rows)) for _ in range(3))
    for i, row in enumerate(rows.tolist()):
        rng = np.random.default_rng((int(seed), int(epoch), _STREAM, row))
        hit, pick, unit, place[i], turn[i] = rng.random(5)
        if hit >= settings.share:
            continue
        kind[i] = settings.kinds[min(int(pick * len(settings.kinds)), len(settings.kinds) - 1)]
        span = {"shrink": settings.shrink, "shift": settings.shift}.get(kind[i])
        if span is not None:
            fraction[i] = span[0] + unit * (span[1] - span[0])
    return Draws(kind, fraction, place, turn)


def jitter_prior(prior: np.ndarray, kind: str, fraction: float = 0.0, place: float = 0.0,
                 turn: float = 0.0) -> np.ndarray:
    """One prior ``(H, W)`` (0/1, any dtype) perturbed as ``kind`` says (see the module);
    returns a new array of the same shape and dtype (``"none"``: a copy).

    ``fraction``, ``place``, ``turn``: as :class:`Draws`. Raises ``ValueError`` for an
    unknown ``kind`` or a prior that is not 2-D.
    """
    prior = np.asarray(prior)
    if prior.ndim != 2:
        raise ValueError(f"a prior is one (H, W) slice, got shape {prior.shape}")
    if kind == NONE:
        return prior.copy()
    if kind == "drop":
        return np.zeros_like(prior)
    if kind == "fill":
        return np.ones_like(prior)
    if kind not in KINDS:
        raise ValueError(f"unknown prior jitter kind {kind!r}; kinds: {KINDS}")
    ys, xs = np.nonzero(prior.any(axis=1))[0], np.nonzero(prior.any(axis=0))[0]
    if not len(ys):
        return prior.copy()
    y0, x0, h, w = ys[0], xs[0], ys[-1] + 1 - ys[0], xs[-1] + 1 - xs[0]
    if kind == "shrink":
        nh, nw = max(1, round(h * (1 - fraction))), max(1, round(w * (1 - fraction)))
        oy = y0 + min(int(place * (h - nh + 1)), h - nh)
        ox = x0 + min(int(turn * (w - nw + 1)), w - nw)
        out = np.zeros_like(prior)
        out[oy:oy + nh, ox:ox + nw] = prior[oy:oy + nh, ox:ox + nw]
        return out
    angle = 2 * math.pi * turn
    return shifted(prior, round(fraction * h * math.sin(angle)),
                   round(fraction * w * math.cos(angle)))


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``image`` ``(H, W)`` moved by ``dy`` rows down and ``dx`` columns right; what leaves
    the array is lost, what is uncovered is 0."""
    out = np.zeros_like(image)
    height, width = image.shape
    if abs(dy) >= height or abs(dx) >= width:
        return out
    out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        image[max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)]
    return out


def jitter_priors(priors: np.ndarray, rows, settings: PriorJitterConfig, *, seed: int,
                  epoch: int) -> np.ndarray:
    """A batch of priors ``(B, H, W)`` or ``(B, H, W, 1)``, rows ``rows`` ``(B,)`` of the
    training arrays, perturbed for ``epoch`` (:func:`draw`); a new array of the same shape and
    dtype. Raises ``ValueError`` when ``rows`` and ``priors`` differ in length."""
    priors = np.asarray(priors)
    rows = np.asarray(rows).reshape(-1)
    if len(rows) != len(priors):
        raise ValueError(f"{len(priors)} priors but {len(rows)} row indices")
    channel = priors.ndim == 4
    if priors.ndim not in (3, 4) or (channel and priors.shape[-1] != 1):
        raise ValueError(f"priors must be (B, H, W) or (B, H, W, 1), got shape {priors.shape}")
    flat = priors[..., 0] if channel else priors
    d = draw(rows, settings, seed, epoch)
    out = np.stack([jitter_prior(p, k, f, a, b) for p, k, f, a, b
                    in zip(flat, d.kind, d.fraction, d.place, d.turn)]) if len(flat) else flat.copy()
    return out[..., None] if channel else out


def prior_augment(settings: PriorJitterConfig, key: str = "prior"
                  ) -> Optional[Callable[..., Any]]:
    """:func:`liverseg.train.loop.fit`'s ``augment`` for the tuning network's inputs (a dict
    whose ``key`` entry is the ``(B, S, S, 1)`` priors): ``None`` when ``settings`` perturb
    nothing (``share`` 0), so that a run without jitter reads its batches as before."""
    if not settings.active:
        return None

    def augment(x: dict, rows, *, seed: int, epoch: int) -> dict:
        return {**x, key: jitter_priors(x[key], rows, settings, seed=seed, epoch=epoch)}

    return augment
