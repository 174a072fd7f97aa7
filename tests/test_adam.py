"""The training loop's Adam: Keras' values, TensorFlow's fused kernel."""

import keras
import numpy as np
import pytest

from liverseg.config import TrainConfig
from liverseg.train.adam import Adam
from liverseg.train.loop import make_optimizer


def _small_net():
    return keras.Sequential([
        keras.Input((12, 12, 1)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Conv2D(1, 1, activation="sigmoid"),
    ])


def _trained(optimizer, steps=6):
    """A small network after ``steps`` batches, from the same start and data every time."""
    keras.utils.set_random_seed(0)
    model = _small_net()
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8 * steps, 12, 12, 1)).astype("float32")
    y = (rng.random((8 * steps, 12, 12, 1)) > 0.5).astype("float32")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return model


@pytest.mark.keras  # on every backend: GPU runs use JAX
@pytest.mark.parametrize("amsgrad", [False, True])
def test_it_trains_to_keras_adams_weights_and_moments(amsgrad):
    ours = _trained(Adam(0.01, amsgrad=amsgrad))
    theirs = _trained(keras.optimizers.Adam(0.01, amsgrad=amsgrad))
    assert len(ours.optimizer.variables) == len(theirs.optimizer.variables)
    for a, b in zip(ours.variables + ours.optimizer.variables,
                    theirs.variables + theirs.optimizer.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=2e-6)
    keras.utils.set_random_seed(0)
    start = _small_net()  # where both began: the steps moved the weights
    assert not np.allclose(np.asarray(ours.variables[0]), np.asarray(start.variables[0]))


def test_on_tensorflow_each_variable_is_updated_by_one_fused_kernel():
    import tensorflow as tf

    assert keras.backend.backend() == "tensorflow"  # the unit tests' backend (see the Makefile)

    def update_ops(optimizer):
        model = _small_net()
        optimizer.build(model.trainable_variables)
        grads = [tf.ones_like(v) for v in model.trainable_variables]
        graph = tf.function(lambda: optimizer.apply(grads, model.trainable_variables)
                            ).get_concrete_function().graph
        return [op.type for op in graph.get_operations()], len(model.trainable_variables)

    fused, n_variables = update_ops(Adam(0.01))
    keras_ops, _ = update_ops(keras.optimizers.Adam(0.01))
    assert fused.count("ResourceApplyAdam") == n_variables
    assert keras_ops.count("ResourceApplyAdam") == 0
    assert len(fused) < len(keras_ops) / 2, (len(fused), len(keras_ops))
    amsgrad, _ = update_ops(Adam(0.01, amsgrad=True))
    assert amsgrad.count("ResourceApplyAdam") == 0  # Keras' own update


@pytest.mark.keras
def test_a_network_compiled_with_it_saves_and_loads_with_its_state(tmp_path):
    model = _trained(make_optimizer(TrainConfig(learning_rate=0.01)))
    assert type(model.optimizer) is Adam
    model.save(tmp_path / "net.keras")
    loaded = keras.models.load_model(tmp_path / "net.keras")
    assert type(loaded.optimizer) is Adam
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.01)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
