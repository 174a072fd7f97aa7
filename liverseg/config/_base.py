"""The settings tree's plumbing: value lists, JSON round trips and the rules of each setting.

A rule is declared once, beside its field (``batch_size: int = setting(4, whole=True,
at_least=1)``), and one validator (:func:`check_fields`) applies them all, so every refusal is a
:class:`~liverseg.errors.SettingError` worded alike: the setting's dotted path, what it accepts
and the value given. Rules between fields stay code, in each section's ``_check_across``.

    >>> from liverseg.config import TrainConfig
    >>> TrainConfig(batch_size=0)
    Traceback (most recent call last):
    ...
    liverseg.errors.SettingError: train.batch_size must be a whole number >= 1, got 0
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar

import numpy as np

from liverseg.errors import SettingError

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
LOSS_SCHEMES = ("paper", "paper_reversed", "uniform", "final_only")  # liverseg.losses.WEIGHT_SCHEMES
COMBINATIONS = ("mean", "product")  # as liverseg.prior
STRUCTURES = ("liver", "lesion")
PRIOR_MODES = ("bbox", "boxes", "mask")  # as liverseg.prior
SHIFT_NETWORKS = ("localizer", "cascade")  # liverseg.experiments.domain_shift.NETWORKS
LESION_RUNGS = ("paper", "weighted_loss", "lesion_rich", "synthetic", "in_sample_priors",
                "closer_view", "fresh_draws")  # liverseg.experiments.lesions.LEVERS, in order


class _Refused(Exception):
    """A value a rule does not accept (turned into a :class:`SettingError` naming the setting)."""


@dataclasses.dataclass(frozen=True)
class Number:
    """A finite real number (not a bool) within the bounds given; ``whole``: of whole value,
    kept as an ``int``; ``floats``: kept as a ``float``."""

    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None
    whole: bool = False
    floats: bool = False

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise _Refused
        low, high = self._low(), self._high()
        if ((self.whole and int(value) != value)
                or (low and not (value >= low[1] if low[0] == "<=" else value > low[1]))
                or (high and not (value <= high[1] if high[0] == "<=" else value < high[1]))):
            raise _Refused
        return int(value) if self.whole else float(value) if self.floats else value

    def _low(self):
        return ("<=", self.at_least) if self.at_least is not None else (
            ("<", self.above) if self.above is not None else None)

    def _high(self):
        return ("<=", self.at_most) if self.at_most is not None else (
            ("<", self.below) if self.below is not None else None)

    def bounds(self, middle: str) -> str:
        """``middle`` between the bounds, e.g. ``"0 <= low <= high < 1"`` (``""``: none)."""
        low, high = self._low(), self._high()
        if not (low or high):
            return ""
        parts = (f"{low[1]:g} {low[0]}" if low else "", middle, f"{high[0]} {high[1]:g}" if high else "")
        return " ".join(p for p in parts if p)

    def __str__(self) -> str:
        low, high = self._low(), self._high()
        if low and high:
            bounds = (f"in {'[' if low[0] == '<=' else '('}{low[1]:g}, "
                      f"{high[1]:g}{']' if high[0] == '<=' else ')'}")
        elif low or high:
            bounds = f"{'>=' if low[0] == '<=' else '>'} {low[1]:g}" if low else f"{high[0]} {high[1]:g}"
        else:
            bounds = ""
        noun = "a whole number" if self.whole else "" if bounds else "a number"
        return " ".join(part for part in (noun, bounds) if part)


@dataclasses.dataclass(frozen=True)
class Pair(Number):
    """A ``(low, high)`` pair of numbers, each within the bounds of :class:`Number`;
    ``order``: ``"<="`` (low <= high), ``"<"`` (low < high) or ``""`` (any order, a
    ``(mean, sd)`` pair)."""

    order: str = "<="

    def check(self, value):
        if isinstance(value, (str, dict)) or not hasattr(value, "__iter__"):
            raise _Refused
        pair = tuple(value)
        if len(pair) != 2:
            raise _Refused
        low, high = (Number.check(self, v) for v in pair)
        if self.order and not (low < high if self.order == "<" else low <= high):
            raise _Refused
        return (low, high)

    def __str__(self) -> str:
        of = " of whole numbers" if self.whole else ""
        if not self.order:  # e.g. a (mean, sd) pair
            return f"a pair, both {Number.__str__(self)}"
        return f"a range{of} with {self.bounds(f'low {self.order} high') or f'low {self.order} high'}"


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of ``options`` (a bool matches only a bool: ``1`` is not ``True``)."""

    options: tuple

    def check(self, value):
        if not any(value == o and isinstance(value, bool) == isinstance(o, bool) for o in self.options):
            raise _Refused
        return value

    def __str__(self) -> str:
        return f"one of {self.options}"


@dataclasses.dataclass(frozen=True)
class Flag:
    """``True`` or ``False``."""

    def check(self, value):
        if not isinstance(value, (bool, np.bool_)):
            raise _Refused
        return bool(value)

    def __str__(self) -> str:
        return "True or False"


@dataclasses.dataclass(frozen=True)
class Instance:
    """An instance of ``kind`` (a string, a nested section)."""

    kind: type

    def check(self, value):
        if not isinstance(value, self.kind):
            raise _Refused
        return value

    def __str__(self) -> str:
        return f"a {self.kind.__name__}"


@dataclasses.dataclass(frozen=True)
class Items:
    """A tuple whose items each pass ``each``; ``nonempty``, ``distinct`` as they say."""

    each: Any
    nonempty: bool = False
    distinct: bool = False

    def check(self, value):
        if isinstance(value, (str, dict)) or not hasattr(value, "__iter__"):
            raise _Refused
        items = tuple(self.each.check(v) for v in value)
        if (self.nonempty and not items) or (self.distinct and len(set(items)) != len(items)):
            raise _Refused
        return items

    def __str__(self) -> str:
        kinds = ", ".join(k for k, on in (("non-empty", self.nonempty), ("distinct", self.distinct)) if on)
        return f"a {kinds + ' ' if kinds else ''}tuple of items each {self.each}"


@dataclasses.dataclass(frozen=True)
class OrNone:
    """``None`` or what ``rule`` accepts."""

    rule: Any

    def check(self, value):
        return None if value is None else self.rule.check(value)

    def __str__(self) -> str:
        return f"{self.rule} or None"


def setting(default=dataclasses.MISSING, *, factory=dataclasses.MISSING, choices=None,
            at_least=None, above=None, at_most=None, below=None, whole=False, floats=False,
            flag=False, kind=None, pair=None, items=None, nonempty=False, distinct=False,
            optional=False):
    """A dataclass field whose value must pass one rule, checked by :func:`check_fields`.

    ``choices``: one of these; ``flag``: True or False; ``kind``: an instance of this type;
    ``pair``: a :class:`Pair`; ``items``: a tuple whose items are each one of ``items`` (a tuple
    of choices) or pass it (a :class:`Number`), ``nonempty`` and ``distinct`` if asked;
    otherwise a :class:`Number` of the bounds given (``at_least``, ``above``, ``at_most``,
    ``below``; ``whole``, ``floats``). ``optional``: ``None`` passes too.
    """
    if items is not None:
        rule = Items(Choice(items) if isinstance(items, tuple) else items, nonempty, distinct)
    elif pair is not None:
        rule = pair
    elif choices is not None:
        rule = Choice(tuple(choices))
    elif flag:
        rule = Flag()
    elif kind is not None:
        rule = Instance(kind)
    else:
        rule = Number(at_least, above, at_most, below, whole, floats)
    return dataclasses.field(default=default, default_factory=factory,
                             metadata={"rule": OrNone(rule) if optional else rule})


def subsection(kind: type):
    """A nested section of the settings tree: a fresh ``kind()`` by default, read back from a
    dict by ``kind.from_dict``."""
    return dataclasses.field(default_factory=kind, metadata={"rule": Instance(kind), "section": kind})


def check_fields(obj, section: str) -> None:
    """Apply each field's rule to ``obj``, keeping the normalised value (tuples, ints, floats);
    :class:`SettingError` naming ``section.field`` for the first value refused."""
    for f in dataclasses.fields(obj):
        rule = f.metadata.get("rule")
        if rule is None:
            continue
        value = getattr(obj, f.name)
        try:
            checked = rule.check(value)
        except (_Refused, TypeError, ValueError):  # TypeError, ValueError: a value of no kind it knows
            path = f"{section}.{f.name}" if section else f.name
            raise SettingError(f"{path} must be {rule}, got {value!r}") from None
        object.__setattr__(obj, f.name, checked)  # also on a frozen dataclass


def _tuplify(value):
    """JSON turns tuples into lists; turn them back so configs compare equal after a round trip."""
    return tuple(value) if isinstance(value, list) else value


class Section:
    """A section of the settings tree (a dataclass): its field rules and ``_check_across`` run
    on construction, and it round-trips through JSON (``to_dict`` / ``from_dict``)."""

    _section: ClassVar[str] = ""  # the section's dotted path ("train.prior_jitter")

    def __post_init__(self):
        check_fields(self, self._section)
        self._check_across()

    def _check_across(self) -> None:
        """Rules between fields (:class:`SettingError` naming the setting); none by default."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        fields = dataclasses.fields(cls)
        unknown = set(data) - {f.name for f in fields}
        if unknown:
            raise SettingError(f"{cls._section or 'the profile'} has no settings {sorted(unknown)}")
        values = {k: _tuplify(v) for k, v in data.items()}
        for f in fields:
            if "section" in f.metadata and isinstance(values.get(f.name), dict):
                values[f.name] = f.metadata["section"].from_dict(values[f.name])
        return cls(**values)
