"""The PixelCNN prior over a grid of code indices (van den Oord et al. 2016), the prior a VQ-VAE samples from.

p(c) = Π_i p(c_i | c_<i) over the positions i of an (h, w) grid in raster order (row by row, left to right):
"Pixel recurrent neural networks" (van den Oord, Kalchbrenner & Kavukcuoglu 2016, §3.4-3.5) with masked
convolutions, as "Neural discrete representation learning" (van den Oord et al. 2017, §3.3) fits it on a
trained VQ-VAE's codes. The layers follow keras-io's "Vector-Quantized Variational Autoencoders" example:
a 7x7 mask-A convolution, residual blocks around a 3x3 mask-B convolution, 1x1 convolutions, logits.
"""

import keras
import numpy as np
from keras import ops

from keras_ae import validation

MASK_TYPES = ("A", "B")


@keras.saving.register_keras_serializable(package="keras_ae")
class MaskedConv2D(keras.layers.Conv2D):
    """A stride-1 "same" Conv2D whose kernel sees only the positions before its centre in raster order: the
    rows above and, in the centre row, the columns to the left (van den Oord et al. 2016, §3.4).
    Mask "A" also hides the centre: the first layer, so that an output never sees its own input. Mask "B"
    keeps it: the later layers, whose centre holds what mask A let through, the earlier positions only.

    Args:
        filters, kernel_size: as `keras.layers.Conv2D`'s.
        mask_type: "A" or "B".
    """

    def __init__(self, filters, kernel_size, mask_type="B", **kwargs):
        validation.check_choice(mask_type=(mask_type, MASK_TYPES))
        super().__init__(filters, kernel_size, **{"padding": "same", **kwargs})
        if self.padding != "same" or self.strides != (1, 1):
            raise ValueError(f"MaskedConv2D needs padding='same' and strides 1; got {self.padding!r}, {self.strides}.")
        self.mask_type = mask_type
        rows, columns = self.kernel_size
        mask = np.ones((rows, columns, 1, 1), np.float32)
        mask[rows // 2, columns // 2 + (mask_type == "B") :] = 0  # the centre (A) and the columns after it
        mask[rows // 2 + 1 :] = 0  # the rows below
        self.mask = mask

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * ops.cast(self.mask, kernel.dtype))

    def get_config(self):
        return {**super().get_config(), "mask_type": self.mask_type}


@keras.saving.register_keras_serializable(package="keras_ae")
class PixelCNN(keras.Model):
    """Logits of p(c_i | c_<i) for every position i of code grids c (batch, h, w) of indices in [0, num_codes):
    (batch, h, w, num_codes). Train it with the cross-entropy of c against its own logits (teacher forcing,
    all positions at once); its mean is the nats per code. Sample position by position (`sample`).

    one-hot c -> MaskedConv2D A (filters, kernel_size, relu) -> `residual_blocks` x [1x1 conv (filters, relu),
    MaskedConv2D B 3x3 (filters / 2, relu), 1x1 conv (filters, relu), + the block's input] -> `output_layers`
    x 1x1 conv (filters, relu) -> 1x1 conv to num_codes logits. A 1x1 convolution sees the centre alone, so
    it is its own mask B.

    Args:
        grid_shape: (h, w), the code grid.
        num_codes: K, the codebook's size.
        filters: channels of the layers.
        kernel_size: of the first, mask-A, convolution.
        residual_blocks, output_layers: how many of each.
    """

    def __init__(self, grid_shape, num_codes, filters=128, kernel_size=7, residual_blocks=2, output_layers=2, **kwargs):
        super().__init__(**kwargs)
        self.grid_shape = tuple(validation.check_positive_int(grid_shape=d) for d in grid_shape)
        self.num_codes = validation.check_positive_int(num_codes=num_codes)
        self.filters = validation.check_int(2, filters=filters)
        self.kernel_size = validation.check_positive_int(kernel_size=kernel_size)
        self.residual_blocks = validation.check_int(0, residual_blocks=residual_blocks)
        self.output_layers = validation.check_int(0, output_layers=output_layers)
        self.first = MaskedConv2D(self.filters, self.kernel_size, "A", activation="relu")
        self.block_layers = []  # three per block
        for _ in range(self.residual_blocks):
            self.block_layers += [
                keras.layers.Conv2D(self.filters, 1, activation="relu"),
                MaskedConv2D(self.filters // 2, 3, "B", activation="relu"),
                keras.layers.Conv2D(self.filters, 1, activation="relu"),
            ]
        self.head = [keras.layers.Conv2D(self.filters, 1, activation="relu") for _ in range(self.output_layers)]
        self.logits = keras.layers.Conv2D(self.num_codes, 1)
        self(np.zeros((1, *self.grid_shape), np.int32))  # built at construction, for saving and loading

    def call(self, codes):
        return self.logits_of_one_hot(ops.one_hot(ops.cast(codes, "int32"), self.num_codes))

    def logits_of_one_hot(self, one_hot):
        """The logits (batch, h, w, K) of one-hot grids (batch, h, w, K): what the masks act on."""
        h = self.first(one_hot)
        for i in range(0, len(self.block_layers), 3):
            widen, masked, narrow = self.block_layers[i : i + 3]
            h = h + narrow(masked(widen(h)))
        for layer in self.head:
            h = layer(h)
        return self.logits(h)

    def sample(self, n, seed=None, batch_size=256):
        """n code grids c ~ p(c), (n, h, w) int32 numpy, drawn position by position in raster order: each
        position from p(c_i | c_<i) given the ones drawn before it (h · w passes of the network a batch).
        `batch_size` grids go through the network at once; the draws do not depend on it."""
        n = validation.check_positive_int(n=n)
        batch_size = validation.check_positive_int(batch_size=batch_size)
        # one uniform a position and grid, drawn up front in raster order: a batch's draws are those of the whole
        uniforms = np.random.default_rng(seed).random((int(np.prod(self.grid_shape)), n, 1))
        return np.concatenate(
            [self._sample_batch(uniforms[:, start : start + batch_size]) for start in range(0, n, batch_size)]
        )

    def _sample_batch(self, uniforms):
        """The grids of `uniforms` (h · w, batch, 1): each position by the inverse CDF of its categorical, by hand
        because numpy's and Keras's categorical samplers take no given uniforms."""
        codes = np.zeros((uniforms.shape[1], *self.grid_shape), np.int32)
        for position, uniform in enumerate(uniforms):
            row, column = divmod(position, self.grid_shape[1])
            logits = ops.convert_to_numpy(self(codes)[:, row, column]).astype(np.float64)
            probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
            cumulative = np.cumsum(probabilities, axis=1)
            drawn = np.sum(cumulative < uniform * cumulative[:, -1:], axis=1)
            codes[:, row, column] = np.minimum(drawn, self.num_codes - 1)  # min(): the last sum's rounding
        return codes

    def get_config(self):
        return {
            **super().get_config(),
            "grid_shape": list(self.grid_shape),
            "num_codes": self.num_codes,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "residual_blocks": self.residual_blocks,
            "output_layers": self.output_layers,
        }
