"""Slices on disk: the same arrays as in memory, a folder reused, and the same training."""

import functools
import json

import numpy as np
import pytest

from liverseg.datasets.synthetic import make_case
from liverseg.train.slices import build_slices

SIZE = 32


@pytest.fixture(scope="module")
def cases():
    return [make_case((0, i), shape=(8, SIZE, SIZE)) for i in range(2)]


@pytest.mark.parametrize("plane, structure", [("axial", "liver"), ("coronal", "lesion")])
def test_a_folder_gives_the_same_slices_as_memory(tmp_path, cases, plane, structure):
    memory = build_slices(cases, plane, SIZE, structure=structure)
    disk = build_slices(cases, plane, SIZE, structure=structure, folder=tmp_path / "slices")
    for name in ("images", "hu", "labels"):
        a, b = getattr(memory, name), getattr(disk, name)
        assert isinstance(b, np.memmap) and not b.flags.writeable
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    assert disk.case_ids.dtype == memory.case_ids.dtype == object
    np.testing.assert_array_equal(disk.case_ids, memory.case_ids)
    index = np.array([1, 3, len(disk) - 1])
    taken = disk.take(index)
    assert not isinstance(taken.images, np.memmap)  # read into memory
    np.testing.assert_array_equal(taken.images, memory.images[index])
    np.testing.assert_array_equal(disk.of_cases([cases[1].case_id]).labels,
                                  memory.of_cases([cases[1].case_id]).labels)
    assert sorted(p.name for p in (tmp_path / "slices").iterdir()) == [
        "hu.npy", "images.npy", "index.json", "labels.npy"]  # no temporary file left


def test_a_complete_folder_is_reused_and_another_rebuilt(tmp_path, cases):
    folder = tmp_path / "slices"
    first = build_slices(cases, "axial", SIZE, folder=folder)
    files = sorted(folder.iterdir())
    stamps = [p.stat().st_mtime_ns for p in files]
    again = build_slices(cases, "axial", SIZE, folder=folder)
    assert [p.stat().st_mtime_ns for p in files] == stamps
    np.testing.assert_array_equal(first.images, again.images)

    one = build_slices(cases[:1], "axial", SIZE, folder=folder)  # other cases: rebuilt
    assert len(one) == 8 and set(one.case_ids) == {cases[0].case_id}
    assert json.loads((folder / "index.json").read_text())["case_ids"] == [cases[0].case_id]

    (folder / "index.json").unlink()  # incomplete (killed before the index): rebuilt
    rebuilt = build_slices(cases[:1], "axial", SIZE, folder=folder)
    np.testing.assert_array_equal(rebuilt.images, one.images)
    assert (folder / "index.json").is_file()


@pytest.mark.keras
def test_a_memmap_slice_set_trains_to_the_same_weights(tmp_path, cases):
    from liverseg import losses, models
    from liverseg.config import LocalizationConfig, TrainConfig
    from liverseg.train.cascade import localizer_targets
    from liverseg.train.loop import fit

    config = LocalizationConfig(image_size=SIZE, base_filters=2, depth=1)
    settings = TrainConfig(learning_rate=1e-2, batch_size=4, epochs=1, jit_compile="auto")
    weights = []
    for folder in (None, tmp_path / "slices"):
        data = build_slices(cases, "axial", SIZE, folder=folder)
        train, val = data.take(slice(0, 8)), data.take(slice(8, 16))  # views: nothing read
        if folder is not None:
            assert isinstance(train.images, np.memmap) and isinstance(val.labels, np.memmap)
        result = fit(lambda: models.build_localization_net(config), losses.BceDiceLoss(),
                     (train.images[..., None], train.labels), (val.images[..., None], val.labels),
                     tmp_path / f"fit-{folder is None}", settings, progress=False,
                     targets=functools.partial(localizer_targets, structure="liver"))
        weights.append(result.model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
