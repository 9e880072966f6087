"""Examples, codes and filters as pictures: the one tiling used by TensorBoard
summaries, the models' `summary_images` and the reproductions' figures."""

import math

import keras
import numpy as np
import tensorflow as tf

MAX_FILTERS = 100
NORMALIZATIONS = ("global", "each", "symmetric")


def display_shape(feature_shape):
    """(H, W, C) to show one example: images as they are, (H, W) with a
    channel, a flat vector of s*s features as s x s (patches), any other as 1 x D."""
    if len(feature_shape) == 3:
        return tuple(feature_shape)
    if len(feature_shape) == 2:
        return (*feature_shape, 1)
    size = int(np.prod(feature_shape))
    side = math.isqrt(size)
    return (side, side, 1) if side * side == size else (1, size, 1)


def _normalized(images, normalize):
    """Values in [0, 1] for display.

    "global": all images share one scale, applied only when they leave [0, 1]
    (data and reconstructions); "each": each image by its own min and max
    (filters); "symmetric": each image by its own max |value|, 0 as mid-grey
    (filters whose sign matters).
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}; got {normalize!r}.")
    if normalize == "symmetric":
        scale = np.abs(images).max(axis=tuple(range(1, images.ndim)), keepdims=True)
        return 0.5 + 0.5 * images / np.maximum(scale, 1e-12)
    axes = tuple(range(1, images.ndim)) if normalize == "each" else None
    low, high = images.min(axis=axes, keepdims=True), images.max(axis=axes, keepdims=True)
    if normalize == "global" and low.min() >= 0 and high.max() <= 1:
        return images
    return (images - low) / np.maximum(high - low, 1e-12)


def tile(images, columns, rows=None, normalize="global", pad=1):
    """One grid of n images, `columns` across, `pad` white pixels between them.

    Args:
        images: (n, h, w) or (n, h, w, c).
        columns: images per row.
        rows: rows of the grid (default: as many as n needs); images beyond
            rows * columns are left out, missing ones are blank.
        normalize: "global", "each" or "symmetric" (see `_normalized`).

    Returns:
        (H', W') for (n, h, w) images, else (H', W', c); float32 in [0, 1].
    """
    images = np.asarray(images, np.float32)
    if len(images) == 0:
        raise ValueError("tile needs at least one image.")
    flat = images.ndim == 3
    images = _normalized(images[..., None] if flat else images, normalize)
    n, h, w, c = images.shape
    rows = math.ceil(n / columns) if rows is None else rows
    grid = np.ones((rows * (h + pad) - pad, columns * (w + pad) - pad, c), np.float32)
    for i, image in enumerate(images[: rows * columns]):
        top, left = (i // columns) * (h + pad), (i % columns) * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid[..., 0] if flat else grid


def first_layer_filters(network, feature_shape):
    """The filters of the first Dense or Conv2D layer of `network` as images (n, h, w, c), or None.

    A Dense kernel (features, units) gives one image of the input's display
    shape per unit; a Conv2D kernel (k, k, channels, filters) one k x k image
    per filter (its first channel unless it has 1 or 3).
    """
    for layer in network.layers:
        if isinstance(layer, keras.layers.Dense):
            kernel = keras.ops.convert_to_numpy(layer.kernel).T
            return kernel[:MAX_FILTERS].reshape((-1, *display_shape(feature_shape)))
        if isinstance(layer, keras.layers.Conv2D):
            kernel = np.transpose(keras.ops.convert_to_numpy(layer.kernel), (3, 0, 1, 2))
            return kernel[:MAX_FILTERS] if kernel.shape[-1] in (1, 3) else kernel[:MAX_FILTERS, ..., :1]
    return None


def png_bytes(image, upscale_to=0):
    """An (H, W) or (H, W, C) image of values in [0, 1] as 8-bit PNG bytes. With `upscale_to`, every pixel is
    repeated (nearest neighbour, so pixels stay sharp) until the longer side is at least that many pixels."""
    image = np.asarray(image, np.float32)
    scale = max(1, math.ceil(upscale_to / max(image.shape[:2])))
    image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return tf.io.encode_png(pixels[..., None] if pixels.ndim == 2 else pixels).numpy()
