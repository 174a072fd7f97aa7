"""Many phantoms: in memory, or written as a LiTS-style folder read by the LiTS code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm.auto import tqdm

from liverseg.datasets.base import Case

from .phantom import make_case


def case_seed(seed: int, index: int) -> tuple[int, int]:
    """Seed of case ``index`` of the dataset ``seed`` (datasets of different seeds share no case)."""
    return (int(seed), int(index))


def phantom_seed(case_id: str) -> tuple[int, ...]:
    """The seed of a phantom from its id (``"phantom-0-3"`` → ``(0, 3)``;
    :func:`make_case` names cases so).

    Raises:
        ValueError: not a phantom's id.
    """
    head, _, rest = str(case_id).partition("-")
    try:
        if head != "phantom" or not rest:
            raise ValueError
        return tuple(int(part) for part in rest.split("-"))
    except ValueError:
        raise ValueError(f"{case_id!r} is not the id of a phantom") from None


def iter_cases(n_cases: int, seed: int = 0, **kwargs) -> Iterator[Case]:
    """Yield ``n_cases`` phantoms (``kwargs`` go to :func:`make_case`: ``shape``, ``config``, ...)."""
    for index in range(n_cases):
        yield make_case(case_seed(seed, index), **kwargs)


def make_dataset(
    root: str | os.PathLike,
    n_cases: int,
    seed: int = 0,
    shape: tuple[int, int, int] | None = None,
    prefix: str = "volume",
    **kwargs,
) -> list[Path]:
    """Write ``n_cases`` phantoms as ``{prefix}-N.nii.gz`` / ``segmentation-N.nii.gz`` pairs.

    The layout is LiTS's, so phantoms go through the same reader as the real data. With
    the default ``shape`` each case is a clinical 512×512 scan (10–60 s, 10–50 MB each);
    the book's profiles pass smaller shapes. ``kwargs`` go to :func:`make_case` (e.g.
    ``config=PhantomConfig()`` for the realistic acquisition mixture). Returns the image paths.
    """
    from liverseg.io import write_volume

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in tqdm(range(n_cases), desc="phantoms", unit="case"):
        case = make_case(case_seed(seed, index), shape=shape, **kwargs)
        image_path = root / f"{prefix}-{index}.nii.gz"
        # whole HU in int16, as LiTS stores them
        write_volume(case.image.array.astype(np.int16), image_path, like=case.image)
        write_volume(case.label.astype(np.uint8), root / f"segmentation-{index}.nii.gz", like=case.image)
        paths.append(image_path)
    return paths
