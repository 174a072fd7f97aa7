"""Patient-level train / val / test split (paper section 3.1)."""

import json
import random

import pytest

from liverseg.datasets.split import Split, load_split, save_split, split_cases, subset_sizes
from liverseg.errors import CorruptFileError, InvalidDataError, MissingFileError

IDS = [f"case-{i:03d}" for i in range(23)]


@pytest.mark.parametrize(
    "n, sizes",
    [(10, (7, 2, 1)), (3, (2, 1, 0)), (1, (1, 0, 0)), (2, (1, 1, 0)), (20, (14, 4, 2)), (131, (92, 26, 13))],
)
def test_sizes_by_largest_remainder(n, sizes):
    split = split_cases([f"p{i}" for i in range(n)])
    assert tuple(len(s) for s in split) == sizes
    assert subset_sizes(n) == sizes


def test_every_id_in_exactly_one_subset():
    split = split_cases(IDS, seed=3)
    members = split.train + split.val + split.test
    assert sorted(members) == sorted(IDS)
    assert len(set(members)) == len(IDS)
    assert all(s == sorted(s) for s in split)


def test_deterministic_for_a_seed_and_different_across_seeds():
    assert split_cases(IDS, seed=7) == split_cases(IDS, seed=7)
    splits = {tuple(split_cases(IDS, seed=s).test) for s in range(5)}
    assert len(splits) > 1


def test_independent_of_input_order():
    shuffled = IDS[:]
    random.Random(1).shuffle(shuffled)
    assert split_cases(reversed(IDS), seed=4) == split_cases(shuffled, seed=4) == split_cases(IDS, seed=4)


def test_custom_fractions():
    split = split_cases(IDS[:10], fractions=(0.5, 0.5, 0.0))
    assert (len(split.train), len(split.val), len(split.test)) == (5, 5, 0)


@pytest.mark.parametrize(
    "fractions", [(0.7, 0.2, 0.2), (0.8, 0.3, -0.1), (0.5, 0.5), (1.0, float("nan"), 0.0), ("a", 0, 0)]
)
def test_bad_fractions(fractions):
    with pytest.raises(InvalidDataError) as info:
        split_cases(IDS, fractions=fractions)
    assert isinstance(info.value, ValueError)
    assert "fractions" in str(info.value)


def test_duplicates_and_empty_are_errors():
    with pytest.raises(InvalidDataError, match="duplicate case ids: b"):
        split_cases(["a", "b", "c", "b"])
    with pytest.raises(InvalidDataError, match="no case ids"):
        split_cases([])


def test_save_load_round_trip(tmp_path):
    split = split_cases(IDS, seed=2)
    path = save_split(split, tmp_path / "split.json")
    assert load_split(path) == split
    assert isinstance(load_split(path), Split)
    assert json.loads(path.read_text())["val"] == split.val
    assert [p.name for p in tmp_path.iterdir()] == ["split.json"]


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(MissingFileError, match="nope.json"):
        load_split(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CorruptFileError, match="bad.json"):
        load_split(bad)
    bad.write_text(json.dumps({"train": ["a"], "val": ["a"], "test": []}))
    with pytest.raises(CorruptFileError, match="more than once: a"):
        load_split(bad)
    bad.write_text(json.dumps({"train": ["a"], "test": []}))
    with pytest.raises(CorruptFileError, match="'val'"):
        load_split(bad)
