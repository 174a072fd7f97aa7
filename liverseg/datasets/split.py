"""Patient-level train / validation / test split (paper section 3.1: 70 / 20 / 10 %).

The split is over case ids, never slices, so no patient's slices appear in two subsets
(slice-level splits leak neighbouring, nearly identical slices into the test set). It is a
pure function of the *set* of ids and the seed: ids are sorted before shuffling, so the
order in which a dataset folder was listed does not matter.
"""

from __future__ import annotations

import collections
import json
import math
import os
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

from liverseg.errors import CorruptFileError, InvalidDataError, MissingFileError
from liverseg.io.atomic import atomic_write_text

SUBSETS = ("train", "val", "test")


class Split(NamedTuple):
    """Case ids of each subset, each list sorted."""

    train: list[str]
    val: list[str]
    test: list[str]


def subset_sizes(n: int, fractions=(0.7, 0.2, 0.1)) -> tuple[int, ...]:
    """Sizes that sum to ``n``, by largest-remainder rounding of ``n * fractions``.

    Each subset first gets the floor of its quota; the ids left over go one each to the
    subsets with the largest fractional remainders (ties: earlier subset first). Hence
    10 ids → 7 / 2 / 1, 3 ids → 2 / 1 / 0, 1 id → 1 / 0 / 0: train, having the largest
    fraction, is never empty.
    """
    fractions = _check_fractions(fractions)
    quotas = [n * f for f in fractions]
    sizes = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - sizes[i]), i))
    for i in by_remainder[: n - sum(sizes)]:
        sizes[i] += 1
    return tuple(sizes)


def split_cases(case_ids: Iterable, fractions=(0.7, 0.2, 0.1), seed: int = 0) -> Split:
    """Split patient ids into train / val / test, deterministically for ``seed``.

    Args:
        case_ids: one id per patient (converted to ``str``); duplicates are an error.
        fractions: ``(train, val, test)``, non-negative, summing to 1.
        seed: seed of the shuffle; the same set of ids and seed always give the same split.

    Raises:
        InvalidDataError: no ids, duplicate ids, or bad fractions.
    """
    ids = sorted(str(case_id) for case_id in case_ids)
    if not ids:
        raise InvalidDataError("no case ids to split")
    duplicates = sorted(i for i, count in collections.Counter(ids).items() if count > 1)
    if duplicates:
        raise InvalidDataError(f"duplicate case ids: {', '.join(duplicates)}")
    sizes = subset_sizes(len(ids), fractions)
    order = np.random.default_rng(seed).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    ends = np.cumsum(sizes)
    starts = ends - np.asarray(sizes)
    return Split(*(sorted(shuffled[s:e]) for s, e in zip(starts, ends)))


def save_split(split: Split, path: str | os.PathLike) -> Path:
    """Write ``split`` as JSON ``{"train": [...], "val": [...], "test": [...]}`` (atomically)."""
    path = Path(path)
    text = json.dumps({name: list(ids) for name, ids in zip(SUBSETS, split)}, indent=1)
    return atomic_write_text(path, text + "\n")


def load_split(path: str | os.PathLike) -> Split:
    """Read a split written by :func:`save_split`; check that no id is in two subsets."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError("split file not found", path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptFileError(f"not a JSON split file ({e})", path) from None
    if not isinstance(data, dict) or any(
        not isinstance(data.get(name), list) or not all(isinstance(i, str) for i in data[name])
        for name in SUBSETS
    ):
        raise CorruptFileError("expected lists of string ids under 'train', 'val' and 'test'", path)
    split = Split(*(sorted(data[name]) for name in SUBSETS))
    counts = collections.Counter(i for ids in split for i in ids)
    repeated = sorted(i for i, count in counts.items() if count > 1)
    if repeated:
        raise CorruptFileError(f"case ids listed more than once: {', '.join(repeated)}", path)
    return split


def _check_fractions(fractions) -> tuple[float, ...]:
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise InvalidDataError(f"fractions must be three numbers, got {fractions!r}") from None
    if len(values) != len(SUBSETS):
        raise InvalidDataError(f"fractions must be (train, val, test), got {fractions!r}")
    if not all(math.isfinite(f) and f >= 0 for f in values):
        raise InvalidDataError(f"fractions must be finite and non-negative, got {fractions!r}")
    if not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise InvalidDataError(f"fractions must sum to 1, got {fractions!r} (sum {sum(values):g})")
    return values
