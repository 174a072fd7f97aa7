"""The settings tree's plumbing: value lists, JSON round trips, range checks."""

from __future__ import annotations

import dataclasses
from typing import Any

PATCH_ARRANGEMENTS = ("space_to_depth", "tiles")
RESIDUAL_MERGES = ("add", "concat")
DATASETS = ("synthetic", "lits", "ircadb")
OPTIMIZERS = ("adam", "sgd", "adamw")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
FUSIONS = ("soft", "union", "intersection", "majority")
LESION_VIEWS = ("liver_box", "full")  # see liverseg.lesion_view
UPSAMPLINGS = ("transpose", "bilinear")
PHANTOM_PHASES = ("unenhanced", "arterial", "portal_venous", "late")  # contrast phases of phantoms
SLICE_PROFILES = ("thickness", "spacing", "none")
APPEARANCE_MODES = ("realistic", "randomized")  # PhantomConfig.appearance (issue 17)
DICE_REDUCTIONS = ("sample", "batch")  # as liverseg.losses
STRUCTURES = ("liver", "lesion")
PRIOR_MODES = ("bbox", "boxes", "mask")  # as liverseg.prior


def _tuplify(value):
    """JSON turns tuples into lists; turn them back so configs compare equal after a round trip."""
    return tuple(value) if isinstance(value, list) else value


class _Serializable:
    """``to_dict`` / ``from_dict`` for (nested) dataclasses."""

    _nested: dict[str, type] = {}  # field name -> config class, for nested configs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
        values = {k: _tuplify(v) for k, v in data.items()}
        for key, sub in cls._nested.items():
            if isinstance(values.get(key), dict):
                values[key] = _from_dict(sub, values[key])
        return cls(**values)


def _from_dict(cls, data: dict[str, Any]):
    """``cls.from_dict(data)``, also for plain dataclasses of other modules (e.g. CRFParams)."""
    if hasattr(cls, "from_dict"):
        return cls.from_dict(data)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    return cls(**{k: _tuplify(v) for k, v in data.items()})


def _check_seed(name: str, value) -> None:
    """A seed setting must be an integer ``>= 0`` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def _check_range(name: str, value, positive: bool = False, ordered: bool = True) -> None:
    """``value`` must be a ``(low, high)`` pair with ``0 <= low <= high`` (``0 < low`` if ``positive``;
    ``ordered=False``: a ``(mean, sd)`` pair, both ``>= 0``)."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}") from None
    if not ordered:
        if low < 0 or high < 0:
            raise ValueError(f"{name} must be a (mean, sd) pair, both >= 0, got {value!r}")
        return
    if not (0 < low if positive else 0 <= low) or low > high:
        bound = "0 < low" if positive else "0 <= low"
        raise ValueError(f"{name} must be a range with {bound} <= high, got {value!r}")
