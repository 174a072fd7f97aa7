"""Per-slice TIFF store: lossless round trip, streaming, batches, damaged files, atomic writes."""

import json

import numpy as np
import pytest
import tifffile

from liverseg.datasets.base import Case
from liverseg.datasets.planes import from_slices
from liverseg.datasets.slice_store import SliceBatches, SliceStore, image_storage_dtype
from liverseg.errors import CorruptFileError, InvalidDataError, MissingFileError, ShapeError
from liverseg.io import Volume

RNG = np.random.default_rng(0)


def hu_stack(n=4, h=16, w=12):
    return RNG.integers(-1024, 3072, size=(n, h, w)).astype(np.int16)


def label_stack(n=4, h=16, w=12):
    return RNG.integers(0, 3, size=(n, h, w)).astype(np.uint8)


def test_int16_hu_round_trip_is_bitwise(tmp_path):
    store = SliceStore(tmp_path)
    images, labels = hu_stack(), label_stack()
    images[0, 0, :2] = (-32768, 32767)
    store.write_case("c1", images, labels, spacing=(2.5, 0.7, 0.7))
    back_images, back_labels = store.read_case("c1")
    assert back_images.dtype == np.int16 and back_labels.dtype == np.uint8
    assert back_images.tobytes() == images.tobytes()
    assert back_labels.tobytes() == labels.tobytes()
    index = store.case_index("c1")
    assert index["image_dtype"] == "int16" and index["spacing"] == [2.5, 0.7, 0.7]
    assert index["shape"] == [4, 16, 12] and index["slices"][2]["index"] == 2


def test_float_hu_with_integer_values_is_stored_as_int16(tmp_path):
    store = SliceStore(tmp_path)
    images = hu_stack().astype(np.float64)  # what nibabel's get_fdata gives
    store.write_case("c1", images)
    back, labels = store.read_case("c1")
    assert back.dtype == np.int16 and labels is None
    np.testing.assert_array_equal(back, images)


def test_float32_round_trip_is_bitwise(tmp_path):
    store = SliceStore(tmp_path)
    images = RNG.standard_normal((3, 16, 12)).astype(np.float32)
    store.write_case("c1", images, label_stack(3))
    back, _ = store.read_case("c1")
    assert back.dtype == np.float32
    assert back.tobytes() == images.tobytes()


def test_storage_dtype_never_loses_precision():
    assert image_storage_dtype(np.array([1.0, -5.0, 3000.0])) == np.int16
    assert image_storage_dtype(np.array([40000], dtype=np.int32)) == np.int32
    assert image_storage_dtype(np.array([0.5], dtype=np.float64)) == np.float32  # exact in float32
    assert image_storage_dtype(np.array([0.1], dtype=np.float64)) == np.float64  # not exact in float32
    with pytest.raises(InvalidDataError, match="NaN"):
        image_storage_dtype(np.array([0.0, np.nan]))


def test_streaming_order_and_laziness(tmp_path):
    store = SliceStore(tmp_path)
    stacks = {cid: hu_stack(n) for cid, n in (("b", 2), ("a", 3))}
    for cid, images in stacks.items():
        store.write_case(cid, images, label_stack(len(images)))
    assert store.case_ids() == ["a", "b"]
    streamed = [image for image, _ in store.iter_slices()]
    expected = list(stacks["a"]) + list(stacks["b"])
    assert len(streamed) == 5
    assert all(np.array_equal(s, e) for s, e in zip(streamed, expected))
    explicit = [image for image, _ in store.iter_slices(["b", "a"])]
    assert np.array_equal(explicit[0], stacks["b"][0])
    # lazy: a slice damaged after the first one is only noticed when reached
    (tmp_path / "axial" / "a" / "image_0002.tif").write_bytes(b"not a tiff")
    stream = store.iter_slices(["a"])
    next(stream)
    next(stream)
    with pytest.raises(CorruptFileError):
        next(stream)


def test_add_case_stores_every_plane(tmp_path):
    shape = (6, 10, 8)
    image = Volume.from_canonical(RNG.integers(-1000, 400, shape).astype(np.int16), (3.0, 0.8, 0.9))
    label = RNG.integers(0, 3, shape).astype(np.uint8)
    store = SliceStore(tmp_path)
    store.add_cases([Case("p1", image, label)], progress=False)
    for plane in ("axial", "coronal", "sagittal"):
        images, labels = store.read_case("p1", plane)
        np.testing.assert_array_equal(from_slices(images, plane), image.array)
        np.testing.assert_array_equal(from_slices(labels, plane), label)
    assert store.case_index("p1", "coronal")["spacing"] == [0.8, 3.0, 0.9]


def test_batches_shape_dtype_and_shuffle(tmp_path):
    store = SliceStore(tmp_path)
    for cid in ("a", "b"):
        store.write_case(cid, hu_stack(5), label_stack(5))
    batches = SliceBatches(store, ["a", "b"], batch_size=4)
    assert len(batches) == 3
    x, y = batches[0]
    assert x.shape == (4, 16, 12, 1) and x.dtype == np.float32
    assert y.shape == (4, 16, 12, 1) and y.dtype == np.uint8
    assert batches[2][0].shape == (2, 16, 12, 1)
    with pytest.raises(IndexError):
        batches[3]
    first, _ = store.read_case("a")
    np.testing.assert_array_equal(x[:, ..., 0], first[:4])

    def all_images(b):
        return np.concatenate([xb for xb, _ in b])

    shuffled = SliceBatches(store, ["a", "b"], batch_size=4, shuffle=True, seed=1)
    epoch0 = all_images(shuffled)
    assert not np.array_equal(epoch0, all_images(batches))
    assert np.array_equal(np.sort(epoch0, axis=None), np.sort(all_images(batches), axis=None))
    again = SliceBatches(store, ["a", "b"], batch_size=4, shuffle=True, seed=1)
    assert np.array_equal(epoch0, all_images(again))
    shuffled.on_epoch_end()
    assert not np.array_equal(epoch0, all_images(shuffled))


def test_batches_transform_and_shape_mismatch(tmp_path):
    store = SliceStore(tmp_path)
    store.write_case("small", hu_stack(2, 8, 8), label_stack(2, 8, 8))
    store.write_case("large", hu_stack(2, 12, 10), label_stack(2, 12, 10))
    with pytest.raises(ShapeError, match="large, small"):
        SliceBatches(store, ["small", "large"], batch_size=4)[0]

    def crop(image, label):
        return image[:8, :8] / 1000.0, label[:8, :8]

    x, y = SliceBatches(store, ["small", "large"], batch_size=4, transform=crop)[0]
    assert x.shape == y.shape == (4, 8, 8, 1)
    assert np.abs(x).max() <= 3.1


def test_corrupt_and_missing_tiff_name_the_file(tmp_path):
    store = SliceStore(tmp_path)
    store.write_case("c1", hu_stack(), label_stack())
    folder = tmp_path / "axial" / "c1"
    data = (folder / "image_0001.tif").read_bytes()
    (folder / "image_0001.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="image_0001.tif"):
        store.read_case("c1")
    (folder / "label_0003.tif").unlink()
    refs = store.slice_refs(["c1"])
    with pytest.raises(MissingFileError, match="label_0003.tif"):
        store.read_slice(refs[3])
    tifffile.imwrite(folder / "image_0002.tif", np.zeros((3, 3), np.int16))
    with pytest.raises(CorruptFileError, match="index says int16"):
        store.read_slice(refs[2])
    with pytest.raises(MissingFileError, match="index.json"):
        store.case_index("c2")
    (folder / "index.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CorruptFileError, match="index.json"):
        store.case_index("c1")


def test_writes_are_atomic(tmp_path, monkeypatch):
    store = SliceStore(tmp_path)
    old = hu_stack(3)
    store.write_case("c1", old, label_stack(3))
    store.write_case("c1", hu_stack(2), label_stack(2))  # replace: fewer slices, none left over
    assert sorted(p.name for p in (tmp_path / "axial").iterdir()) == ["c1"]
    assert len(list((tmp_path / "axial" / "c1").iterdir())) == 5

    calls = []
    real_imwrite = tifffile.imwrite

    def failing_imwrite(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:
            raise OSError("disk full")
        return real_imwrite(*args, **kwargs)

    monkeypatch.setattr(tifffile, "imwrite", failing_imwrite)
    with pytest.raises(OSError, match="disk full"):
        store.write_case("c1", old, label_stack(3))
    with pytest.raises(OSError, match="disk full"):
        calls.clear()
        store.write_case("c2", old, label_stack(3))
    assert sorted(p.name for p in (tmp_path / "axial").iterdir()) == ["c1"]
    assert store.case_ids() == ["c1"]
    assert store.read_case("c1")[0].shape == (2, 16, 12)  # the previous version, intact


def test_bad_input(tmp_path):
    store = SliceStore(tmp_path)
    with pytest.raises(ShapeError, match="label slices"):
        store.write_case("c1", hu_stack(3), label_stack(2))
    with pytest.raises(ShapeError):
        store.write_case("c1", hu_stack()[0])
    with pytest.raises(InvalidDataError, match="case c1: image slices contain NaN"):
        store.write_case("c1", np.full((1, 4, 4), np.nan))
    with pytest.raises(InvalidDataError, match="0..255"):
        store.write_case("c1", hu_stack(1), np.full((1, 16, 12), 300))
    with pytest.raises(InvalidDataError, match="folder name"):
        store.write_case("../escape", hu_stack(1))
    with pytest.raises(InvalidDataError, match="unknown plane"):
        store.write_case("c1", hu_stack(1), plane="oblique")
    assert not (tmp_path / "axial").exists() or not any((tmp_path / "axial").iterdir())
