"""A resumable training loop: one checkpoint per epoch, a CSV log, early stopping.

``fit`` trains a Keras model epoch by epoch in a work folder. After every epoch it writes the
values of the model's and its optimizer's variables (``epoch-NNN.npz``), then ``state.json``
naming that file, so a run killed at any moment resumes from the last epoch it finished: the
model is built again and the values assigned back (``model.save`` of a small network costs
0.2 s of Python walking its layers per epoch, the values 0.04 s; a checkpoint written as a
``.keras`` file by earlier versions still resumes). Every source of
randomness of an epoch is derived from ``(seed, epoch)``: the shuffling order and the state
of every dropout seed generator, which is re-seeded at the start of each epoch. A resumed run
therefore ends with the same weights and metrics as an uninterrupted one (same backend,
same machine). Early stopping follows Table 2 ("epochs stopping count"): training stops after
``patience`` epochs without a lower validation loss (counted after ``early_stopping_start``),
and the best epoch's weights are kept (``final.keras``): the best of all epochs, or with
``keep_best_after_start`` of those after ``early_stopping_start`` (Keras'
``EarlyStopping(start_from_epoch)``).

The data are read one batch at a time (:class:`Batches`, a ``keras.utils.PyDataset``): batch
``i`` of an epoch is the rows ``order[i * batch_size:(i + 1) * batch_size]`` of the arrays,
so the arrays may be ``np.memmap`` files (:func:`liverseg.train.slices.build_slices` with a
``folder``) and no epoch copies the training set. ``targets`` turns each batch's ``y`` into
what the model's outputs are compared with (a mask from 0/1/2 labels, the multi-level targets
of the tuning network), so these need not exist for the whole set at once; ``augment`` changes
the ``x`` of each training batch (never a validation batch) as a function of the rows, the seed
and the epoch (the tuning network's prior jitter, :mod:`liverseg.prior_jitter`); with
``train.flips`` each training slice is mirrored or turned, its label alike
(:mod:`liverseg.train.flips`), with ``train.spatial`` zoomed, turned and shifted
(:mod:`liverseg.train.spatial`), and with ``train.intensity`` re-contrasted
(:mod:`liverseg.train.intensity`).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
from tqdm.auto import tqdm

import liverseg.losses  # noqa: F401  (registers the losses a checkpoint is compiled with)
import liverseg.models  # noqa: F401  (registers the layers)
from liverseg.config import TrainConfig
from liverseg.io.atomic import atomic_path, atomic_write_text
from liverseg.train.adam import Adam
from liverseg.train.allocator import reuse_tensor_memory
from liverseg.train.flips import draw_symmetries, flip_batch
from liverseg.train.intensity import IntensityConfig, draw_remaps, remap_batch
from liverseg.train.spatial import SpatialConfig, draw_warps, warp_batch

STATE = "state.json"
FINAL = "final.keras"
BEST = "best.weights.npz"
OLD_BEST = "best.weights.h5"  # written by earlier versions; read when no newer best exists
LOG = "log.csv"


@dataclasses.dataclass
class FitResult:
    """A trained model (best epoch's weights) and its per-epoch log."""

    model: keras.Model
    history: list[dict[str, float]]
    best_epoch: int
    path: Path  # the saved model (``final.keras``)


def make_optimizer(settings: TrainConfig) -> keras.optimizers.Optimizer:
    """The optimizer named by ``settings.optimizer`` at ``settings.learning_rate``; ``adam`` is
    Keras' Adam with TensorFlow's fused update (:mod:`liverseg.train.adam`)."""
    optimizers = {"adam": Adam, "adamw": keras.optimizers.AdamW,
                  "sgd": keras.optimizers.SGD}
    return optimizers[settings.optimizer](learning_rate=settings.learning_rate)


def fit(
    build: Callable[[], keras.Model],
    loss: Any,
    train: tuple[Any, Any],
    val: tuple[Any, Any] | None,
    workdir: str | os.PathLike,
    settings: TrainConfig,
    *,
    epochs: int | None = None,
    patience: int | None = None,
    seed: int | None = None,
    progress: bool = True,
    desc: str = "training",
    targets: Callable[[Any], Any] | None = None,
    sampler: Callable[[int], np.ndarray] | None = None,
    augment: Callable[..., Any] | None = None,
) -> FitResult:
    """Train ``build()`` on ``train`` = (x, y), choosing the epoch on ``val``, resumably.

    Args:
        build: returns the (uncompiled or compiled) model to train; called once, only when
            ``workdir`` holds no checkpoint. It runs under ``keras.utils.set_random_seed(seed)``.
        loss: what ``model.compile(loss=...)`` takes.
        train, val: ``(x, y)``; ``x`` an array or a dict of arrays (one per model input), ``y``
            an array or a dict (one per output), all with the same first dimension. Any
            object with ``len()`` whose ``[index_array]`` gives those rows as an array will
            do (``np.memmap``, :class:`ConcatenatedRows`); only one batch is read at a time.
            ``val`` ``None``: no early stopping, the last epoch is kept.
        workdir: the folder of this training's checkpoints, ``state.json`` and ``log.csv``.
        settings: optimizer, learning rate, batch size, epochs, patience, seed, precision,
            jit, flips, spatial warps, intensity remaps (``epochs``, ``patience``, ``seed``
            override them).
        targets: ``None`` (``y`` is the target) or a function applied to each batch of ``y``
            (training and validation) that returns the batch's target, e.g.
            ``lambda y: losses.multi_level_targets(y, n_levels)``. It must depend on the
            batch's rows only, one by one.
        sampler: ``None`` (each epoch a permutation drawn with ``(seed, epoch)``) or a function
            of the epoch returning the rows it reads, in order (rows may repeat or be left
            out), e.g. :func:`liverseg.train.slices.balanced_order` for batches rich in a rare
            structure. It must depend on the epoch only, so that a resumed run reads the same.
        augment: ``None`` or a function ``augment(x, rows, seed=seed, epoch=epoch)`` applied to
            the ``x`` of each *training* batch (never to ``val``'s): ``rows`` are the batch's
            row indices in ``train`` (``(B,)`` int64), and it returns the batch's new ``x``,
            e.g. :func:`liverseg.prior_jitter.prior_augment`. It must depend on its arguments
            only, row by row, so that a resumed run reads the same.
    Returns:
        :class:`FitResult`; when ``workdir`` holds a finished run, it is loaded, not retrained.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    reuse_tensor_memory()  # a quarter less time on a CPU, the same numbers (see its module)
    epochs = settings.epochs if epochs is None else int(epochs)
    patience = settings.early_stopping_patience if patience is None else int(patience)
    seed = settings.seed if seed is None else int(seed)
    state = _read_state(workdir)
    if state.get("finished"):
        return FitResult(keras.models.load_model(workdir / FINAL), _read_log(workdir),
                         state["best_epoch"], workdir / FINAL)

    distribution = data_parallel(settings.devices)
    with distribution.scope() if distribution else contextlib.nullcontext():
        return _fit(build, loss, train, val, workdir, settings, state, epochs, patience, seed,
                    progress, desc, targets, sampler, augment)


def _fit(build, loss, train, val, workdir, settings, state, epochs, patience, seed, progress,
         desc, targets, sampler, augment=None) -> FitResult:
    previous_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(settings.precision)  # for the layers built now only
    try:
        checkpoint = state.get("checkpoint")
        saved = None
        if checkpoint and checkpoint.endswith(".keras"):  # written by an earlier version
            model = keras.models.load_model(workdir / checkpoint)
            saved = [v.numpy() for v in model.variables + model.optimizer.variables]
        else:
            keras.utils.set_random_seed(seed)
            model = build()
        # compiled with this version's optimizer even when resuming an earlier version's run
        # (whose optimizer may have been Keras' own Adam): its variables are the same
        model.compile(optimizer=make_optimizer(settings), loss=loss,
                      jit_compile=settings.jit_compile)
        # Built now, eagerly: built inside the first traced step instead, the optimizer's
        # slots are variables created by a tf.function, which TensorFlow then traces a
        # second time (seconds per network on a CPU).
        model.optimizer.build(model.trainable_variables)
        _build_loss(model, Batches(train[0], train[1], settings.batch_size, targets=targets)[0])
        if saved is not None:
            _assign(model.variables + model.optimizer.variables, saved)
        elif checkpoint:
            _assign(model.variables + model.optimizer.variables, workdir / checkpoint)
        else:
            state = {"epoch": 0, "best_loss": None, "best_epoch": 0, "wait": 0}
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)
    history = _read_log(workdir)[: state["epoch"]]
    n = _length(train[0])
    share = settings.devices
    val_batches = None if val is None else Batches(val[0], val[1], settings.batch_size,
                                                   targets=targets, multiple_of=share)
    bar = tqdm(range(state["epoch"], epochs), desc=desc, unit="epoch", disable=not progress,
               initial=state["epoch"], total=epochs)
    for epoch in bar:
        reseed(model, seed, epoch)
        order = (np.random.default_rng((seed, epoch)).permutation(n) if sampler is None
                 else sampler(epoch))
        batches = Batches(train[0], train[1], settings.batch_size, order=order, targets=targets,
                          multiple_of=share, flips=(seed, epoch) if settings.flips else None,
                          spatial=(settings.spatial, seed, epoch) if settings.spatial.active
                          else None,
                          intensity=(settings.intensity, seed, epoch)
                          if settings.intensity.active else None,
                          augment=None if augment is None
                          else functools.partial(augment, seed=seed, epoch=epoch))
        fitted = model.fit(batches, epochs=1, shuffle=False, verbose=0)
        row = {"epoch": epoch + 1, "loss": float(fitted.history["loss"][-1])}
        if val_batches is not None:
            row["val_loss"] = float(_evaluate(model, val_batches))
        history.append(row)
        monitored = row.get("val_loss", row["loss"])
        before_start = epoch + 1 <= settings.early_stopping_start
        if settings.keep_best_after_start and before_start:  # nothing chosen yet: the last
            state.update(best_loss=None, best_epoch=epoch + 1, wait=0)  # epoch stands in
            _save_values(model.variables, workdir / BEST)
        elif state["best_loss"] is None or monitored < state["best_loss"] or val is None:
            state.update(best_loss=monitored, best_epoch=epoch + 1, wait=0)
            _save_values(model.variables, workdir / BEST)
            (workdir / OLD_BEST).unlink(missing_ok=True)
        elif not before_start:
            state["wait"] += 1
        checkpoint = f"epoch-{epoch + 1:03d}.npz"
        _save_values(model.variables + model.optimizer.variables, workdir / checkpoint)
        state.update(epoch=epoch + 1, checkpoint=checkpoint)
        _write_log(workdir, history)
        _write_state(workdir, state)
        _remove_old_checkpoints(workdir, keep=checkpoint)
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k != "epoch"})
        if val is not None and state["wait"] >= patience:
            break
    bar.close()
    if (workdir / BEST).is_file():
        _assign(model.variables, workdir / BEST)
    else:
        model.load_weights(workdir / OLD_BEST)
    model.save(workdir / FINAL)
    state["finished"] = True
    _write_state(workdir, state)
    _remove_old_checkpoints(workdir, keep=None)
    return FitResult(model, history, state["best_epoch"], workdir / FINAL)


def data_parallel(devices: int) -> keras.distribution.Distribution | None:
    """Keras' ``DataParallel`` over the first ``devices`` accelerators (``None`` for one).

    The model's variables are replicated on every device and each batch is split between
    them; gradients are averaged, so the loss trajectory is that of one device with the
    same batch, up to the order of floating-point sums. Keras' distribution API runs on the
    JAX backend only.
    """
    if devices == 1:
        return None
    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(f"train.devices={devices} needs the JAX backend (keras.distribution); "
                         f"this process runs {backend!r}: set KERAS_BACKEND=jax")
    available = keras.distribution.list_devices()
    if len(available) < devices:
        raise ValueError(f"train.devices={devices}, but this machine has {len(available)}: "
                         f"{available}")
    return keras.distribution.DataParallel(devices=available[:devices])


def reseed(model: keras.Model, seed: int, epoch: int) -> None:
    """Set every seed generator of ``model`` (dropout) to a state derived from (seed, epoch).

    Keras does not save seed generator states with a model, so without this a resumed run
    would draw other dropout masks than an uninterrupted one.
    """
    base = int(np.random.default_rng((seed, epoch, 7)).integers(0, 2**30))
    generators = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    for i, variable in enumerate(generators):
        variable.assign(np.array([base, i], dtype=variable.dtype))


class Batches(keras.utils.PyDataset):
    """``(x, y)`` batches of arrays read one batch at a time, in a given order.

    Batch ``i`` holds the rows ``order[i * batch_size:(i + 1) * batch_size]`` (``order``: any
    1-D row indices, rows may repeat or be left out; ``None``: the rows in their own order)
    of ``x`` and ``y`` (arrays, dicts or lists of
    arrays, or anything with ``len()`` and ``[index_array]``), with ``targets`` applied to
    the ``y`` part; the last batch may be smaller. The rows of a batch are read in increasing
    order (sequential reads of a ``np.memmap``) and put back in ``order``'s. Only the batch is
    in memory: the arrays are never indexed as a whole. ``augment``: ``None`` or a function
    ``augment(x, rows)`` of a batch's ``x`` and its row indices (``(B,)`` int64) that returns
    the batch's ``x``. ``flips``: ``None`` or ``(seed, epoch)``: each row of batch ``i``, ``x``
    and ``y`` alike, under the symmetry :func:`~liverseg.train.flips.draw_symmetries` draws
    for ``(seed, epoch, i)``, before ``augment`` and ``targets``. ``spatial``: ``None`` or
    ``(SpatialConfig, seed, epoch)``: each row, ``x`` and ``y`` alike, zoomed, turned and
    shifted as :func:`~liverseg.train.spatial.draw_warps` draws for ``(seed, epoch, i)``,
    after the flips (``y`` and a dict's ``"prior"`` by nearest pixel). ``intensity``: ``None``
    or ``(IntensityConfig, seed, epoch)``: each row's image (not ``y``, not a dict's
    ``"prior"``) remapped as :func:`~liverseg.train.intensity.draw_remaps` draws for ``(seed,
    epoch, i)``, after the warps. ``multiple_of``: every
    batch's size is a multiple of it (data-parallel training splits each batch evenly
    between devices), so the last ``(n % batch_size) % multiple_of`` rows of ``order`` are
    left out (other rows each epoch when ``order`` is shuffled). ``kwargs`` go to
    ``keras.utils.PyDataset`` (``workers``, ``use_multiprocessing``, ``max_queue_size``);
    :func:`fit` keeps the default single worker: with ``workers`` > 1, Keras 3.15 on JAX
    feeds the first epoch of a new model's batches in another order (the batch its build
    step took comes last), which would break the resumed-run guarantee. On TensorFlow the
    batches are still read ahead (``tf.data`` prefetch).
    """

    def __init__(self, x, y, batch_size: int, order: np.ndarray | None = None,
                 targets: Callable[[Any], Any] | None = None, multiple_of: int = 1,
                 augment: Callable[[Any, np.ndarray], Any] | None = None,
                 flips: tuple[int, int] | None = None,
                 spatial: tuple[SpatialConfig, int, int] | None = None,
                 intensity: tuple[IntensityConfig, int, int] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.targets, self.augment = x, y, targets, augment
        self.flips, self.spatial, self.intensity = flips, spatial, intensity
        self.batch_size = int(batch_size)
        if self.batch_size % multiple_of:
            raise ValueError(f"batch_size={batch_size} is not a multiple of {multiple_of}")
        rows = _length(x)
        if _length(y) != rows:
            raise ValueError(f"x has {rows} rows but y {_length(y)}")
        if order is not None:
            order = np.asarray(order, dtype=np.int64)
            if order.ndim != 1 or not len(order):
                raise ValueError(f"order must be 1-D row indices, got shape {order.shape}")
            if order.min() < 0 or order.max() >= rows:
                raise ValueError(f"order holds rows outside 0 … {rows - 1}")
        self.order = order
        read = rows if order is None else len(order)
        self.n = read - (read % self.batch_size) % multiple_of  # the rows read per epoch

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} of {len(self)}")
        start, stop = i * self.batch_size, min((i + 1) * self.batch_size, self.n)
        rows = slice(start, stop) if self.order is None else self.order[start:stop]
        y = _take(self.y, rows)
        x = _take(self.x, rows)
        if self.flips is not None:
            codes = draw_symmetries(stop - start, *self.flips, i)
            x, y = flip_batch(x, codes), flip_batch(y, codes)
        if self.spatial is not None:
            warps = draw_warps(stop - start, *self.spatial, i)
            x, y = warp_batch(x, warps), warp_batch(y, warps, order=0)
        if self.intensity is not None:
            x = remap_batch(x, draw_remaps(stop - start, *self.intensity, i))
        if self.augment is not None:
            x = self.augment(x, np.arange(start, stop, dtype=np.int64) if self.order is None
                             else np.asarray(rows, dtype=np.int64))
        return x, (y if self.targets is None else self.targets(y))


class ConcatenatedRows:
    """The rows of several arrays one after the other, without copying them into one array.

    ``len()`` is the total number of rows; ``[index]`` (an integer index array or a slice)
    returns those rows as one new array, so it can stand for ``np.concatenate(parts)`` in
    :func:`fit`'s data.
    """

    def __init__(self, *parts):
        if not parts:
            raise ValueError("nothing to concatenate")
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])
        self.shape = (int(self.starts[-1]),) + tuple(parts[0].shape[1:])
        self.dtype = np.result_type(*[p.dtype for p in parts])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        index = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        out = np.empty((len(index),) + self.shape[1:], self.dtype)
        part_of = np.searchsorted(self.starts, index, side="right") - 1
        for k, part in enumerate(self.parts):
            mine = np.flatnonzero(part_of == k)
            if len(mine):
                out[mine] = part[index[mine] - self.starts[k]]
        return out


def _build_loss(model: keras.Model, batch) -> None:
    """Build the compiled loss now, eagerly, on one batch's targets and all-zero outputs.

    A model of several outputs (the tuning network) keeps a loss tracker per output, built
    with the loss; built inside the first traced step instead, these are variables created by a
    ``tf.function``, which TensorFlow then traces a second time (seconds per network on a CPU).
    The trackers' values are reset at the start of every epoch, so nothing else changes.
    """
    x, y = keras.tree.map_structure(lambda a: np.asarray(a)[:1], batch)
    outputs = keras.tree.map_structure(
        lambda t: np.zeros((1, *t.shape[1:]), keras.backend.standardize_dtype(t.dtype)),
        model.output)
    model.compute_loss(x=x, y=y, y_pred=outputs, training=False)


def _evaluate(model, batches) -> float:
    result = model.evaluate(batches, verbose=0)
    return result[0] if isinstance(result, (list, tuple)) else result


def _length(x) -> int:
    if isinstance(x, dict):
        return len(next(iter(x.values())))
    if isinstance(x, (list, tuple)):
        return len(x[0])
    return len(x)


def _take(x, rows):
    """The ``rows`` (a slice or an index array) of an array, dict or list of arrays, as new
    in-memory arrays."""
    if isinstance(x, dict):
        return {k: _rows(v, rows) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_rows(v, rows) for v in x]
    return _rows(x, rows)


def _rows(array, rows) -> np.ndarray:
    if isinstance(rows, slice):
        return np.array(array[rows])
    increasing = np.argsort(rows, kind="stable")
    read = np.asarray(array[rows[increasing]])  # sorted: sequential reads of a memmap
    out = np.empty_like(read)
    out[increasing] = read
    return out


def _read_state(workdir: Path) -> dict:
    path = workdir / STATE
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def _write_state(workdir: Path, state: dict) -> None:
    atomic_write_text(workdir / STATE, json.dumps(state, indent=1))


def _read_log(workdir: Path) -> list[dict[str, float]]:
    path = workdir / LOG
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
                for row in csv.DictReader(f)]


def _write_log(workdir: Path, history: list[dict[str, float]]) -> None:
    fields = list(dict.fromkeys(k for row in history for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(workdir / LOG, buffer.getvalue())


def _save_values(variables, path: Path) -> None:
    """The values of ``variables``, in order, as one ``.npz`` file (written whole or not at all)."""
    with atomic_path(path) as temporary, open(temporary, "wb") as f:
        np.savez(f, *[keras.ops.convert_to_numpy(v) for v in variables])


def _assign(variables, source: Path | list[np.ndarray]) -> None:
    """Assign the values :func:`_save_values` wrote (a path) or a list of values to
    ``variables`` (the same network's, in the same order)."""
    if not isinstance(source, (str, os.PathLike)):
        _assign_values(variables, source, "the saved network")
        return
    with np.load(source) as saved:
        _assign_values(variables, [saved[f"arr_{i}"] for i in range(len(saved.files))], source)


def _assign_values(variables, values, source) -> None:
    if len(values) != len(variables):
        raise ValueError(f"{source}: {len(values)} saved values for a network of "
                         f"{len(variables)} variables; it was written by another network")
    for variable, value in zip(variables, values):
        variable.assign(value)


def _remove_old_checkpoints(workdir: Path, keep: str | None) -> None:
    for path in [*workdir.glob("epoch-*.npz"), *workdir.glob("epoch-*.keras")]:
        if path.name != keep:
            path.unlink(missing_ok=True)
