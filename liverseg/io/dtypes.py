"""The smallest storage dtype that holds an array exactly (NIfTI output, TIFF slice store)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from liverseg.errors import InvalidDataError

#: Default candidates, smallest first.
STORAGE_DTYPES = (np.uint8, np.int16, np.int32, np.float32, np.float64)


def smallest_exact_dtype(array, candidates: Sequence = STORAGE_DTYPES) -> np.dtype:
    """The first of ``candidates`` (smallest first) that holds every value of ``array`` exactly.

    An integer candidate holds an array whose values are all integers (boolean, integer,
    or integer-valued float data) within its range. A float candidate holds float data that
    survives the round trip through it unchanged (NaN and ±inf included); boolean and
    integer data are only ever given an integer candidate, so an integer image stays integer.
    An empty array fits the first candidate.

    Raises:
        InvalidDataError: non-numeric data, or no candidate holds the values exactly (the
            message gives their range and the candidates; callers add the file or case).
    """
    a = np.asarray(array)
    if a.dtype.kind not in "buif":
        raise InvalidDataError(f"cannot store dtype {a.dtype} as a number type")
    candidates = [np.dtype(c) for c in candidates]
    for candidate in candidates:
        if candidate.kind not in "iuf":
            raise ValueError(f"storage candidates must be integer or float dtypes, got {candidate}")
    is_float = a.dtype.kind == "f"
    if not is_float:  # an integer image stays integer
        candidates = [c for c in candidates if c.kind in "iu"]
    low, high = (a.min(), a.max()) if a.size else (0, 0)  # NaN if there is NaN: not integral
    low, high = (float(low), float(high)) if is_float else (int(low), int(high))
    integral = not is_float or bool(np.array_equal(np.trunc(a), a))  # NaN != NaN
    for candidate in candidates:
        if candidate.kind in "iu":
            info = np.iinfo(candidate)
            if integral and info.min <= low and high <= info.max:
                return candidate
        elif a.dtype.itemsize <= candidate.itemsize:
            return candidate
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                if np.array_equal(a.astype(candidate), a, equal_nan=True):
                    return candidate
    names = ", ".join(c.name for c in candidates)
    raise InvalidDataError(f"values {low}..{high} do not fit exactly in any of {names}")
