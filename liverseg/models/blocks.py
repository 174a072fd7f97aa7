"""Building blocks of the two networks, one block per class or function.

Plain conv blocks of the localization net are functions over built-in layers, so each conv keeps
a stable name that Grad-CAM can target. The tuning net's own ideas (dilated first layer, residual
block, multi-level image patches, ConvBox, ASPP) are serializable Keras layers: a saved ``.keras``
model loads back with ``keras.models.load_model(path)`` once ``liverseg.models`` is imported.

Shapes are channels-last: ``(batch, height, width, channels)``.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from liverseg.config import RESIDUAL_MERGES

PACKAGE = "liverseg"


# --------------------------------------------------------------------------- plain functions


def conv_block(x, filters, dropout=0.0, batch_norm=False, name="block"):
    """Two 3×3 conv–ReLU layers with dropout between them (the U-Net block of Fig. 5).

    Layers are named ``{name}_conv1`` and ``{name}_conv2``.
    """
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm,
                          name=f"{name}_conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
        if i == 1 and dropout:
            x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def upsample(x, filters, mode="transpose", name="up"):
    """Double the spatial size.

    ``"transpose"``: learned 2×2 transposed conv, (h, w, c) -> (2h, 2w, filters).
    ``"bilinear"``: parameter-free bilinear resize, (h, w, c) -> (2h, 2w, c).
    """
    if mode == "transpose":
        return layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=name)(x)
    return layers.UpSampling2D(2, interpolation="bilinear", name=name)(x)


# --------------------------------------------------------------------------- patch arrangement


def space_to_depth(images, factor):
    """Cut images into ``factor``×``factor``-pixel patches laid out on a grid.

    (b, h, w, c) -> (b, h/f, w/f, f*f*c). Output pixel (i, j) holds the f×f patch of input
    pixels (f*i .. f*i+f-1, f*j .. f*j+f-1): lossless and spatially aligned with a feature map
    of size h/f.
    """
    b, h, w, c = ops.shape(images)
    f = factor
    x = ops.reshape(images, (-1, h // f, f, w // f, f, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, h // f, w // f, f * f * c))


def depth_to_space(patches, factor):
    """Inverse of :func:`space_to_depth`: (b, h/f, w/f, f*f*c) -> (b, h, w, c)."""
    b, hf, wf, cff = ops.shape(patches)
    f = factor
    c = cff // (f * f)
    x = ops.reshape(patches, (-1, hf, wf, f, f, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, hf * f, wf * f, c))


def image_to_tiles(images, factor):
    """Cut images into f×f tiles of size (h/f, w/f) stacked as channels (tile-major).

    (b, h, w, c) -> (b, h/f, w/f, f*f*c). Lossless, but output pixel (i, j) mixes pixels from
    f*f distant places of the slice, so it is not aligned with the feature map it joins.
    """
    b, h, w, c = ops.shape(images)
    f = factor
    x = ops.reshape(images, (-1, f, h // f, f, w // f, c))
    x = ops.transpose(x, (0, 2, 4, 1, 3, 5))
    return ops.reshape(x, (-1, h // f, w // f, f * f * c))


def tiles_to_image(tiles, factor):
    """Inverse of :func:`image_to_tiles`."""
    b, hf, wf, cff = ops.shape(tiles)
    f = factor
    c = cff // (f * f)
    x = ops.reshape(tiles, (-1, hf, wf, f, f, c))
    x = ops.transpose(x, (0, 3, 1, 4, 2, 5))
    return ops.reshape(x, (-1, f * hf, f * wf, c))


_ARRANGE = {"space_to_depth": space_to_depth, "tiles": image_to_tiles}
_UNARRANGE = {"space_to_depth": depth_to_space, "tiles": tiles_to_image}


# --------------------------------------------------------------------------- layers


def _build_chain(chain, shape):
    """Build a sequence of sublayers from an input shape; return the output shape."""
    for layer in chain:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class ImagePatches(layers.Layer):
    """The slice cut into non-overlapping patches that match one encoder level (Section 3.4).

    At encoder level l the feature map is (H/f, W/f) with f = 2**(l-1); the slice is cut into
    f×f-pixel patches, one per feature-map pixel (``"space_to_depth"``), or into f×f tiles of
    the feature-map size (``"tiles"``). (b, H, W, c) -> (b, H/f, W/f, f*f*c). No weights.
    """

    def __init__(self, factor, arrangement="space_to_depth", **kwargs):
        super().__init__(**kwargs)
        if arrangement not in _ARRANGE:
            raise ValueError(f"arrangement must be one of {tuple(_ARRANGE)}, got {arrangement!r}")
        self.factor = int(factor)
        self.arrangement = arrangement

    def call(self, images):
        return _ARRANGE[self.arrangement](images, self.factor)

    def invert(self, patches):
        """The slice back from its patches (exact)."""
        return _UNARRANGE[self.arrangement](patches, self.factor)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        f = self.factor
        return (b, None if h is None else h // f, None if w is None else w // f, f * f * c)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "arrangement": self.arrangement}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DilatedStem(layers.Layer):
    """First layer: parallel 3×3 convolutions at several dilation rates, concatenated.

    Small rates keep fine detail, large ones see global context (Section 3, Fig. 8).
    (b, H, W, c) -> (b, H, W, filters); each of the n branches has filters / n channels.
    """

    def __init__(self, filters, dilation_rates=(1, 2, 4, 8), **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.dilation_rates = tuple(int(r) for r in dilation_rates)
        width = self.filters // len(self.dilation_rates)
        self.branches = [
            layers.Conv2D(width, 3, padding="same", dilation_rate=r, activation="relu",
                          name=f"dilated_{r}")
            for r in self.dilation_rates
        ]

    def build(self, input_shape):
        for branch in self.branches:
            branch.build(input_shape)

    def call(self, x):
        return ops.concatenate([branch(x) for branch in self.branches], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "dilation_rates": self.dilation_rates}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResidualBlock(layers.Layer):
    """Fig. 11: conv3×3 [-BN] -ReLU -dropout -conv3×3 [-BN], merged with the input, then ReLU.

    ``merge="add"``: the input is added through a shortcut, the identity when the width does
    not change, else a 1×1 conv (residual learning). ``merge="concat"``: the input is
    concatenated to the output and a 1×1 conv brings the width back to ``filters`` (the
    "concatenating the input" of the Fig. 11 text).
    With ``residual=False`` it is the plain two-conv block (for ablation).
    (b, h, w, c) -> (b, h, w, filters).
    """

    def __init__(self, filters, dropout=0.0, batch_norm=False, residual=True, merge="add",
                 **kwargs):
        super().__init__(**kwargs)
        if merge not in RESIDUAL_MERGES:
            raise ValueError(f"merge must be one of {RESIDUAL_MERGES}, got {merge!r}")
        self.filters = int(filters)
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)
        self.residual = bool(residual)
        self.merge = merge
        bias = not self.batch_norm
        self.conv1 = layers.Conv2D(self.filters, 3, padding="same", use_bias=bias, name="conv1")
        self.conv2 = layers.Conv2D(self.filters, 3, padding="same", use_bias=bias, name="conv2")
        self.bn1 = layers.BatchNormalization(name="bn1") if self.batch_norm else None
        self.bn2 = layers.BatchNormalization(name="bn2") if self.batch_norm else None
        self.drop = layers.Dropout(self.dropout) if self.dropout else None
        self.shortcut = None
        self.join = None
        self.fuse = None
        if self.residual and merge == "add":
            self.join = layers.Add(name="add")
        elif self.residual:
            self.join = layers.Concatenate(name="concat")
            self.fuse = layers.Conv2D(self.filters, 1, name="fuse")

    def build(self, input_shape):
        shape = _build_chain([self.conv1], input_shape)
        if self.bn1 is not None:
            self.bn1.build(shape)
        self.conv2.build(shape)
        if self.bn2 is not None:
            self.bn2.build(shape)
        if self.fuse is not None:
            self.fuse.build((*shape[:-1], self.filters + input_shape[-1]))
        elif self.residual and input_shape[-1] != self.filters:
            self.shortcut = layers.Conv2D(self.filters, 1, name="shortcut")
            self.shortcut.build(input_shape)

    def call(self, x, training=None):
        y = self.conv1(x)
        if self.bn1 is not None:
            y = self.bn1(y, training=training)
        y = ops.relu(y)
        if self.drop is not None:
            y = self.drop(y, training=training)
        y = self.conv2(y)
        if self.bn2 is not None:
            y = self.bn2(y, training=training)
        if self.fuse is not None:
            y = self.fuse(self.join([y, x]))
        elif self.residual:
            y = self.join([y, x if self.shortcut is None else self.shortcut(x)])
        return ops.relu(y)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "dropout": self.dropout,
                "batch_norm": self.batch_norm, "residual": self.residual, "merge": self.merge}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConvBox(layers.Layer):
    """Fig. 12: location features of the ROI prior at one level's resolution.

    Max-pooling (size ``pool_size``) then three 3×3 convs without bias (``filters``,
    ``filters``, ``channels``), ReLU after the first two. Without bias the features are exactly
    zero wherever the pooled prior is zero in the receptive field, so multiplying a skip
    connection by them keeps the features inside the ROI: the "intersection" of Section 3.4.
    The last conv is linear: a ReLU there could start at zero everywhere and, having no
    gradient, would then cut its skip connection for good. With ``channels=1`` the output is
    one attention map shared by every channel of the skip it multiplies.
    (b, H, W, 1) -> (b, H/pool_size, W/pool_size, channels).
    """

    def __init__(self, filters, pool_size=1, channels=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.pool_size = int(pool_size)
        self.channels = int(channels)
        self.pool = layers.MaxPooling2D(self.pool_size, name="pool")
        widths = (self.filters, self.filters, self.channels)
        activations = ("relu", "relu", None)
        self.convs = [
            layers.Conv2D(width, 3, padding="same", activation=act, use_bias=False,
                          name=f"conv{i}")
            for i, (width, act) in enumerate(zip(widths, activations), start=1)
        ]

    def build(self, input_shape):
        _build_chain([self.pool, *self.convs], input_shape)

    def call(self, prior):
        x = self.pool(prior)
        for conv in self.convs:
            x = conv(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = self.pool.compute_output_shape(input_shape)
        return (*shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "pool_size": self.pool_size,
                "channels": self.channels}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ASPP(layers.Layer):
    """Atrous spatial pyramid pooling of DeepLabv3 (Section 3.5, Figs. 9–10).

    Branches: a 1×1 conv, one 3×3 conv per atrous rate, and image-level pooling (global
    average, 1×1 conv, broadcast back); each conv–BN–ReLU. They are concatenated and projected
    by a 1×1 conv–BN–ReLU. (b, h, w, c) -> (b, h, w, filters).
    """

    def __init__(self, filters=256, rates=(6, 12, 18), **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.rates = tuple(int(r) for r in rates)

        def conv_bn(kernel, rate, name):
            return [
                layers.Conv2D(self.filters, kernel, padding="same", dilation_rate=rate,
                              use_bias=False, name=f"{name}_conv"),
                layers.BatchNormalization(name=f"{name}_bn"),
            ]

        self.branches = [conv_bn(1, 1, "conv1x1")]
        self.branches += [conv_bn(3, r, f"atrous{r}") for r in self.rates]
        self.pooling = conv_bn(1, 1, "pooling")
        self.projection = conv_bn(1, 1, "projection")

    def build(self, input_shape):
        for branch in self.branches:
            _build_chain(branch, input_shape)
        _build_chain(self.pooling, (input_shape[0], 1, 1, input_shape[-1]))
        n = len(self.branches) + 1
        _build_chain(self.projection, (*input_shape[:-1], n * self.filters))

    @staticmethod
    def _apply(chain, x, training):
        conv, bn = chain
        return ops.relu(bn(conv(x), training=training))

    def call(self, x, training=None):
        outs = [self._apply(branch, x, training) for branch in self.branches]
        pooled = ops.mean(x, axis=(1, 2), keepdims=True)  # (b, 1, 1, c)
        pooled = self._apply(self.pooling, pooled, training)
        outs.append(ops.broadcast_to(pooled, ops.shape(outs[0])))
        return self._apply(self.projection, ops.concatenate(outs, axis=-1), training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "rates": self.rates}
