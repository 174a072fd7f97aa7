"""The resumable training loop: a run killed partway resumes to the same weights and log
(here with each epoch reading its own rows, as the lesion stage's per-epoch synthetic draws
do, and each training slice flipped or turned)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest


SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from liverseg import losses, models
    from liverseg.config import LocalizationConfig, TrainConfig, profile
    from liverseg.train.cascade import epoch_sampler
    from liverseg.train.loop import fit

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    centres = rng.uniform(10, 22, (24, 2))
    y = ((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2 < 36).astype("float32")
    x = y + rng.normal(0, 0.3, y.shape).astype("float32")
    data = (x[:16, ..., None], y[:16, ..., None]), (x[16:, ..., None], y[16:, ..., None])
    config = LocalizationConfig(image_size=32, base_filters=4, depth=2, dropout=0.3)
    settings = TrainConfig(learning_rate=3e-3, batch_size=4, epochs=int(sys.argv[2]),
                           early_stopping_patience=10, jit_compile="auto", flips=True)
    # rows 8-15 stand for synthetic draws 1 and 2 of rows 0-7: an epoch reads 0-7 and one draw
    ids = np.array([f"p{i}" for i in range(8)] + [f"p{i}~synthetic{1 + i % 2}" for i in range(8)])
    stage = profile("smoke").replace(**{"lesion.synthesis.share": 1.0, "lesion.synthesis.copies": 2,
                                        "lesion.synthesis.per_epoch": True}).stage("lesion")
    sampler = epoch_sampler(data[0][1][..., 0], "lesion", stage, ids)
    fit(lambda: models.build_localization_net(config), losses.BceDiceLoss(), *data,
        sys.argv[1], settings, progress=False, sampler=sampler)
    """
)


def _run(workdir, epochs, **kwargs):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(workdir), str(epochs)],
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, **kwargs)


def _weights(workdir):
    import keras

    import liverseg.train.loop  # noqa: F401  (registers the layers and losses)

    return keras.models.load_model(workdir / "final.keras").get_weights()


def _kill_partway(workdir, epochs):
    """Start a run of ``epochs`` and kill it as soon as two epochs are checkpointed."""
    process = _run(workdir, epochs)
    state = workdir / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if state.is_file() and json.loads(state.read_text()).get("epoch", 0) >= 2:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    interrupted_at = json.loads(state.read_text())["epoch"]
    assert 2 <= interrupted_at < epochs, "the run was not killed partway"
    assert not (workdir / "final.keras").exists()


#: the length of the runs killed partway and of the uninterrupted run they must match
EPOCHS = 4


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """One run of ``EPOCHS`` left to finish: the reference every resumed run must match."""
    folder = tmp_path_factory.mktemp("whole")
    assert _run(folder, EPOCHS).wait(timeout=300) == 0
    return folder


@pytest.mark.keras  # on every backend: GPU runs use JAX
def test_a_killed_run_resumes_to_the_same_weights_and_log(whole, tmp_path):
    epochs = EPOCHS
    killed = tmp_path / "killed"
    _kill_partway(killed, epochs)
    state = killed / "state.json"
    assert (killed / json.loads(state.read_text())["checkpoint"]).suffix == ".npz"

    assert _run(killed, epochs).wait(timeout=300) == 0
    for a, b in zip(_weights(whole), _weights(killed)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert (whole / "log.csv").read_text() == (killed / "log.csv").read_text()
    assert json.loads((whole / "state.json").read_text()) == json.loads(state.read_text())
    assert not list(killed.glob("epoch-*")), "checkpoints are cleaned up at the end"


def test_a_run_checkpointed_by_an_earlier_version_resumes_to_the_same_weights(whole, tmp_path):
    """Earlier versions wrote each epoch as ``model.save`` (``epoch-NNN.keras``) and the best
    epoch as ``save_weights`` (``best.weights.h5``): such a run still resumes exactly."""
    import keras

    from liverseg import losses, models
    from liverseg.config import LocalizationConfig
    from liverseg.train.loop import _assign

    epochs = EPOCHS
    killed = tmp_path / "killed"
    _kill_partway(killed, epochs)
    state = json.loads((killed / "state.json").read_text())
    model = models.build_localization_net(LocalizationConfig(image_size=32, base_filters=4,
                                                             depth=2, dropout=0.3))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=losses.BceDiceLoss())
    model.optimizer.build(model.trainable_variables)
    _assign(model.variables, killed / "best.weights.npz")
    model.save_weights(killed / "best.weights.h5")
    _assign(model.variables + model.optimizer.variables, killed / state["checkpoint"])
    old_checkpoint = state["checkpoint"].replace(".npz", ".keras")
    model.save(killed / old_checkpoint)
    for path in killed.glob("*.npz"):
        path.unlink()
    (killed / "state.json").write_text(json.dumps({**state, "checkpoint": old_checkpoint}))

    assert _run(killed, epochs).wait(timeout=300) == 0
    for a, b in zip(_weights(whole), _weights(killed)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert (whole / "log.csv").read_text() == (killed / "log.csv").read_text()


def test_a_finished_run_is_loaded_not_retrained(whole):
    before = {path.name: path.stat().st_mtime_ns for path in whole.iterdir()}
    assert _run(whole, EPOCHS).wait(timeout=300) == 0
    assert {path.name: path.stat().st_mtime_ns for path in whole.iterdir()} == before


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    from liverseg import losses, models
    from liverseg.config import LocalizationConfig, TrainConfig
    from liverseg.train.loop import fit

    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 16, 16, 1)).astype("float32")
    y = (rng.random((8, 16, 16, 1)) > 0.5).astype("float32")  # noise: validation cannot improve long
    settings = TrainConfig(learning_rate=1e-2, batch_size=4, epochs=12, early_stopping_patience=2,
                           jit_compile=False)
    config = LocalizationConfig(image_size=16, base_filters=2, depth=1)
    result = fit(lambda: models.build_localization_net(config), losses.BceDiceLoss(),
                 (x[:4], y[:4]), (x[4:], y[4:]), tmp_path, settings, progress=False)
    val = [row["val_loss"] for row in result.history]
    assert result.best_epoch == 1 + int(np.argmin(val))
    assert len(val) == min(12, result.best_epoch + 2)  # stopped `patience` epochs after the best
    best = result.model.evaluate(x[4:], y[4:], verbose=0)
    assert best == pytest.approx(min(val), rel=1e-5)


def test_early_stopping_counts_only_the_epochs_after_its_start(tmp_path):
    from liverseg import losses, models
    from liverseg.config import LocalizationConfig, TrainConfig
    from liverseg.train.loop import fit

    rng = np.random.default_rng(2)
    x = rng.normal(size=(8, 16, 16, 1)).astype("float32")
    y = (rng.random((8, 16, 16, 1)) > 0.5).astype("float32")  # noise: validation cannot improve long
    config = LocalizationConfig(image_size=16, base_filters=2, depth=1)
    runs = {}
    for start in (0, 6):
        settings = TrainConfig(learning_rate=1e-1, batch_size=4, epochs=12, early_stopping_patience=2,
                               early_stopping_start=start, jit_compile=False)
        runs[start] = fit(lambda: models.build_localization_net(config), losses.BceDiceLoss(),
                          (x[:4], y[:4]), (x[4:], y[4:]), tmp_path / str(start), settings,
                          progress=False)
    assert len(runs[0].history) == runs[0].best_epoch + 2 < 8  # stopped early without a start
    val = [row["val_loss"] for row in runs[6].history]
    assert runs[6].best_epoch == 1 + int(np.argmin(val))  # chosen among every epoch
    assert len(val) == min(12, max(runs[6].best_epoch, 6) + 2)  # never before epoch 6 + 2
    for epochs, start in ((12, 6), (4, 6)):  # Keras' start_from_epoch: chosen after the start
        settings = TrainConfig(learning_rate=1e-1, batch_size=4, epochs=epochs,
                               early_stopping_patience=2, early_stopping_start=start,
                               keep_best_after_start=True, jit_compile=False)
        run = fit(lambda: models.build_localization_net(config), losses.BceDiceLoss(),
                  (x[:4], y[:4]), (x[4:], y[4:]), tmp_path / f"after-{epochs}", settings,
                  progress=False)
        val = [row["val_loss"] for row in run.history]
        if epochs > start:
            assert run.best_epoch == start + 1 + int(np.argmin(val[start:]))
            assert len(val) == min(epochs, run.best_epoch + 2)
        else:  # ended before the start: the last epoch is kept
            assert run.best_epoch == epochs == len(val)


def test_mixed_precision_is_a_setting_and_does_not_leak(tmp_path):
    import keras

    from liverseg import losses, models
    from liverseg.config import LocalizationConfig, TrainConfig
    from liverseg.train.loop import fit

    rng = np.random.default_rng(2)
    x = rng.normal(size=(8, 16, 16, 1)).astype("float32")
    y = (x > 0.5).astype("float32")
    settings = TrainConfig(learning_rate=1e-2, batch_size=4, epochs=1, precision="mixed_bfloat16",
                           jit_compile=False)
    config = LocalizationConfig(image_size=16, base_filters=2, depth=1)
    result = fit(lambda: models.build_localization_net(config), losses.BceDiceLoss(),
                 (x, y), None, tmp_path, settings, progress=False)
    assert result.model.get_layer("enc1_conv1").compute_dtype == "bfloat16"
    assert result.model.get_layer("probability").compute_dtype == "float32"  # output stays fp32
    assert np.isfinite(result.history[0]["loss"])
    assert keras.mixed_precision.dtype_policy().name == "float32"


def test_batches_are_the_rows_of_each_epochs_order_read_one_batch_at_a_time(tmp_path):
    from liverseg import losses
    from liverseg.train.loop import Batches, ConcatenatedRows

    rng = np.random.default_rng(3)
    x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32,
                                  shape=(10, 8, 8, 1))
    x[:] = rng.normal(size=x.shape)
    x.flush()
    x = np.load(tmp_path / "x.npy", mmap_mode="r")
    y = (rng.random((10, 8, 8)) > 0.5).astype(np.float32)
    order = np.random.default_rng((0, 1)).permutation(10)
    batches = Batches({"image": x}, y, 4, order=order,
                      targets=lambda y: losses.multi_level_targets(y, 2))
    assert len(batches) == 3
    whole = losses.multi_level_targets(y[order], 2)
    for i in range(3):
        xb, yb = batches[i]
        rows = slice(4 * i, min(4 * i + 4, 10))
        assert type(xb["image"]) is np.ndarray
        np.testing.assert_array_equal(xb["image"], x[order][rows])
        assert set(yb) == set(whole)
        for name in whole:
            np.testing.assert_array_equal(yb[name], whole[name][rows])
    with pytest.raises(IndexError):
        batches[3]
    in_order = Batches(x, y, 4)
    np.testing.assert_array_equal(in_order[2][0], x[8:])
    some = Batches(x, y, 4, order=np.array([7, 7, 2, 0, 9]))  # rows repeat or are left out
    assert len(some) == 2
    np.testing.assert_array_equal(some[1][0], x[[9]])
    for bad in (np.array([0, 10]), np.array([-1]), np.zeros((2, 2), int)):
        with pytest.raises(ValueError, match="order"):
            Batches(x, y, 4, order=bad)

    parts = (y[:3], np.zeros((0, 8, 8), np.float32), y[3:])
    joined = ConcatenatedRows(*parts)
    assert len(joined) == 10 and joined.shape == y.shape
    np.testing.assert_array_equal(joined[order], y[order])
    np.testing.assert_array_equal(joined[2:5], y[2:5])


def test_the_early_stopping_start_is_keyed_only_when_used():
    from liverseg.config import profile
    from liverseg.config.stages import stage_tree

    base = profile("smoke")
    assert "early_stopping_start" not in stage_tree(base, "localizer")["train"]  # stores keep their keys
    later = base.replace(**{"train.early_stopping_start": 8})
    assert stage_tree(later, "localizer")["train"]["early_stopping_start"] == 8
    # the lesion stage may keep its own (demo's counts from epoch 8 for the liver, 0 for lesions)
    both = base.replace(**{"train.early_stopping_start": 8, "lesion.early_stopping_start": 0})
    assert both.stage("liver").train.early_stopping_start == 8
    assert both.stage("lesion").train.early_stopping_start == 0
    assert "early_stopping_start" not in stage_tree(both.stage("lesion"), "localizer")["train"]


def test_a_network_of_several_outputs_is_traced_once_for_training(tmp_path):
    """On TensorFlow (the default backend) the per-output loss trackers are built before the
    first step: built inside it, they would make ``tf.function`` trace the whole step again.
    (JAX compiles once per batch shape, so there a short last batch costs a second one.)"""
    import keras

    from liverseg.config import TrainConfig
    from liverseg.train.loop import fit

    traced = []

    class Counted(keras.Model):
        def train_step(self, *args):  # TensorFlow: (data); JAX: (state, data)
            traced.append(1)
            return super().train_step(*args)

    def build():
        image = keras.Input((8, 8, 1))
        hidden = keras.layers.Conv2D(2, 3, padding="same", activation="relu")(image)
        heads = {name: keras.layers.Conv2D(1, 1, activation="sigmoid", name=name)(hidden)
                 for name in ("a", "b")}
        return Counted(image, heads)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 8, 8, 1)).astype("float32")
    y = {"a": (x > 0).astype("float32"), "b": (x > 0.5).astype("float32")}
    settings = TrainConfig(learning_rate=1e-2, batch_size=4, epochs=2, early_stopping_patience=5)
    result = fit(build, {"a": "binary_crossentropy", "b": "binary_crossentropy"}, (x, y), None,
                 tmp_path, settings, progress=False)
    assert len(result.history) == 2 and len(traced) == 1
