"""Flips and quarter turns of training slices (``train.flips``): image, prior and label alike,
drawn per (seed, epoch, batch), never on validation batches."""

import numpy as np
import pytest

from liverseg.train.flips import SYMMETRIES, apply_symmetry, draw_symmetries, flip_batch


def test_the_eight_symmetries_of_a_square_are_distinct_rearrangements():
    image = np.arange(16.0).reshape(4, 4)
    images = [apply_symmetry(image, code) for code in range(SYMMETRIES)]
    np.testing.assert_array_equal(images[0], image)
    assert len({im.tobytes() for im in images}) == 8
    for im in images:  # the same pixels, moved; corners stay corners
        np.testing.assert_array_equal(np.sort(im, axis=None), np.sort(image, axis=None))
        assert set(im[[0, 0, -1, -1], [0, -1, 0, -1]]) == {0.0, 3.0, 12.0, 15.0}
    np.testing.assert_array_equal(apply_symmetry(image, 3), np.rot90(image, 2))
    np.testing.assert_array_equal(apply_symmetry(image, 4), image.T)
    channels = np.stack([image, -image], axis=-1)  # (H, W, C): the channels stay put
    np.testing.assert_array_equal(apply_symmetry(channels, 6)[..., 1], -apply_symmetry(image, 6))


def test_bad_symmetries_are_refused():
    with pytest.raises(ValueError, match="0 … 7"):
        apply_symmetry(np.zeros((4, 4)), 8)
    with pytest.raises(ValueError, match="square"):
        apply_symmetry(np.zeros((4, 6)), 4)
    np.testing.assert_array_equal(apply_symmetry(np.eye(4, 6), 3), np.eye(4, 6)[::-1, ::-1])
    with pytest.raises(ValueError, match="3 symmetries for a batch of 2"):
        flip_batch(np.zeros((2, 4, 4)), np.zeros(3, int))


def test_draws_are_a_function_of_seed_epoch_and_batch_and_cover_every_symmetry():
    first = draw_symmetries(64, seed=1, epoch=2, batch=3)
    np.testing.assert_array_equal(first, draw_symmetries(64, seed=1, epoch=2, batch=3))
    assert not np.array_equal(first, draw_symmetries(64, seed=1, epoch=3, batch=3))
    assert not np.array_equal(first, draw_symmetries(64, seed=1, epoch=2, batch=4))
    counts = np.bincount(draw_symmetries(8000, 0, 0, 0), minlength=8)
    assert len(counts) == 8 and counts.min() > 850  # about 1000 each


def test_a_batch_keeps_image_prior_and_label_in_register():
    from liverseg.train.loop import Batches

    rng = np.random.default_rng(0)
    labels = (rng.random((10, 8, 8)) > 0.7).astype(np.float32)
    x = {"image": (3 * labels + rng.normal(0, 0.1, labels.shape))[..., None].astype(np.float32),
         "prior": (labels > 0)[..., None].astype(np.float32)}
    flipped = Batches(x, labels, 4, flips=(5, 1))
    plain = Batches(x, labels, 4)
    moved = 0
    for i in range(len(flipped)):
        (xb, yb), (xp, yp) = flipped[i], plain[i]
        np.testing.assert_array_equal(xb["prior"][..., 0], yb > 0)  # still in register
        np.testing.assert_array_equal(np.round(xb["image"][..., 0] / 3), yb)
        codes = draw_symmetries(len(yb), 5, 1, i)
        for row, code in enumerate(codes):
            np.testing.assert_array_equal(yb[row], apply_symmetry(yp[row], code))
        moved += int(np.sum(codes > 0))
        np.testing.assert_array_equal(yp, labels[4 * i:4 * i + 4])  # no flips: as stored
    assert moved > 0
    again = Batches(x, labels, 4, flips=(5, 1))  # a resumed run reads the same batches
    np.testing.assert_array_equal(again[2][1], flipped[2][1])


def batches_seen_by_fit(monkeypatch, tmp_path, settings) -> list:
    """``(kind, batches)`` for every ``Batches`` a tiny :func:`~liverseg.train.loop.fit` of 2
    epochs with ``settings`` makes: kind ``"training"`` or ``"validation"``."""
    import keras

    from liverseg import losses
    from liverseg.train import loop

    seen = []
    real = loop.Batches

    class Recording(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(("training" if self.order is not None else "validation", self))

    monkeypatch.setattr(loop, "Batches", Recording)
    x = np.zeros((8, 8, 8, 1), np.float32)
    y = np.zeros((8, 8, 8, 1), np.float32)

    def build():
        inputs = keras.Input((8, 8, 1))
        return keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))

    loop.fit(build, losses.BceDiceLoss(), (x, y), (x, y), tmp_path, settings, progress=False)
    return seen


def assert_only_training_batches_draw(monkeypatch, tmp_path, name: str, section) -> None:
    """A fit of 2 epochs with ``train.<name>`` set to ``section`` gives its draws (``(seed,
    epoch)``) to each training epoch's ``Batches`` and none to the validation batches."""
    from liverseg.config import TrainConfig

    settings = TrainConfig(batch_size=4, epochs=2, early_stopping_patience=5, jit_compile=False,
                           **{name: section})
    seen = [(kind, None if getattr(b, name) is None else getattr(b, name)[1:])
            for kind, b in batches_seen_by_fit(monkeypatch, tmp_path, settings)]
    assert ("validation", None) in seen
    assert [s for kind, s in seen if kind == "training"] == [(0, 0), (0, 1)]


def assert_keyed_only_once_on(name: str) -> None:
    """``train.<name>`` stays out of every store key while its share is 0, enters the liver's
    and the lesion's when set, and ``lesion.<name>_share`` 0 gives the lesion stage back its
    key of before."""
    from liverseg.config import profile, stage_tree

    smoke = profile("smoke")
    for stage in ("localizer", "tuner", "rounds"):
        assert name not in stage_tree(smoke, stage).get("train", {})
    on = smoke.replace(**{f"train.{name}.share": 0.5})
    assert stage_tree(on, "localizer")["train"][name]["share"] == 0.5
    assert stage_tree(on.stage("lesion"), "localizer")["train"][name]["share"] == 0.5
    liver_only = on.replace(**{f"lesion.{name}_share": 0.0})  # the lesion stage keeps its key
    assert stage_tree(liver_only.stage("lesion"), "localizer") == stage_tree(
        smoke.stage("lesion"), "localizer")
    assert getattr(liver_only.stage("liver").train, name).share == 0.5


def test_only_training_batches_are_flipped(monkeypatch, tmp_path):
    from liverseg.config import TrainConfig

    settings = TrainConfig(batch_size=4, epochs=2, early_stopping_patience=5, flips=True,
                           jit_compile=False)
    seen = [(kind, b.flips) for kind, b in batches_seen_by_fit(monkeypatch, tmp_path, settings)]
    assert ("validation", None) in seen
    assert [f for kind, f in seen if kind == "training"] == [(0, 0), (0, 1)]
