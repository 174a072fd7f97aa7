"""Data-parallel training (``train.devices``): the same loss trajectory on two devices as on one.

The two-device run needs the JAX backend with two (virtual CPU) devices, which must be set
before JAX starts, so it runs in a fresh process whatever backend this suite runs on.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from liverseg import config
from liverseg.train.store import rounds_key
from liverseg.train.loop import Batches, data_parallel

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from liverseg import losses, models
    from liverseg.config import LocalizationConfig, TrainConfig
    from liverseg.train.loop import fit

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    centres = rng.uniform(10, 22, (26, 2))
    y = ((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2 < 36).astype("float32")
    x = y + rng.normal(0, 0.3, y.shape).astype("float32")
    data = (x[:16, ..., None], y[:16, ..., None]), (x[16:, ..., None], y[16:, ..., None])
    config = LocalizationConfig(image_size=32, base_filters=4, depth=2, dropout=0.3)
    out = {}
    for devices in (1, 2):
        settings = TrainConfig(learning_rate=3e-3, batch_size=4, epochs=2,
                               early_stopping_patience=10, devices=devices)
        result = fit(lambda: models.build_localization_net(config), losses.BceDiceLoss(),
                     *data, f"{sys.argv[1]}/devices-{devices}", settings, progress=False)
        kernel = result.model.trainable_variables[0]
        out[devices] = {"history": result.history,
                        "weights": [np.asarray(w).ravel()[:50].tolist() for w in result.model.get_weights()],
                        "shards": len(kernel.value.sharding.device_set)}
    print("RESULT" + json.dumps(out))
    """
)


def test_two_devices_follow_the_loss_trajectory_of_one(tmp_path):
    # both runs compile with the same flags; LLVM's optimizations would triple the compile time
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2 "
                        "--xla_backend_optimization_level=0"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT"))
    runs = json.loads(line[len("RESULT"):])
    one, two = runs["1"], runs["2"]
    assert (one["shards"], two["shards"]) == (1, 2)  # the weights really live on both devices
    assert len(one["history"]) == len(two["history"]) == 2
    for a, b in zip(one["history"], two["history"]):
        # 10 validation rows: the two-device run evaluates all of them too (batches 4, 4, 2)
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
    for a, b in zip(one["weights"], two["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_batches_leave_out_the_rows_that_would_not_split_evenly():
    x = np.arange(11)[:, None].astype("float32")
    order = np.random.default_rng(0).permutation(11)
    batches = Batches(x, x, batch_size=4, order=order, multiple_of=2)
    seen = np.concatenate([batches[i][0][:, 0] for i in range(len(batches))])
    assert [len(batches[i][0]) for i in range(len(batches))] == [4, 4, 2]
    np.testing.assert_array_equal(seen, order[:10])  # the last row of this epoch's order waits
    assert len(Batches(x[:9], x[:9], batch_size=4, multiple_of=2)) == 2  # 4, 4: one row left
    with pytest.raises(ValueError, match="multiple of 2"):
        Batches(x, x, batch_size=3, multiple_of=2)


def test_devices_is_validated_and_changes_no_stored_result():
    with pytest.raises(ValueError, match=r"multiple of train\.devices=2"):
        config.TrainConfig(batch_size=3, devices=2)
    with pytest.raises(ValueError, match=r"train\.devices must be a whole number >= 1"):
        config.TrainConfig(devices=0)
    smoke = config.profile("smoke")
    two = smoke.replace(**{"train.devices": 2})
    assert rounds_key(two) == rounds_key(smoke)
    assert "devices" not in two.learned_settings()["train"]
    assert two.to_dict()["train"]["devices"] == 2  # still saved with the run


def test_more_devices_than_the_machine_has_is_refused():
    import keras

    assert data_parallel(1) is None
    message = "JAX backend" if keras.backend.backend() != "jax" else "this machine has"
    with pytest.raises(ValueError, match=message):
        data_parallel(64)
