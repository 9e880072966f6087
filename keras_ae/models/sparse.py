"""Sparse autoencoders: an L1 penalty on the code, or the KL-Bernoulli sparsity of Ng (2011)."""

from keras_ae import losses, validation
from keras_ae.models.mlp import MLPAutoencoder
from keras_ae.registry import register

PENALTIES = ("l1", "kl")


@register("sparse")
class SparseAutoencoder(MLPAutoencoder):
    """An MLP autoencoder whose code is pushed towards sparsity.

    Args:
        penalty: "l1" adds λ Σ_j |h_j| (per example, mean over the batch);
            "kl" adds β Σ_j KL(Bernoulli(ρ) || Bernoulli(p̂_j)), p̂_j the
            minibatch mean of the sigmoid code h_j (Ng 2011, §3); under
            several replicas, the mean over the global batch.
        sparsity_weight: λ for "l1", β for "kl".
        target_rate: ρ, the target mean activation for "kl".
        Other arguments: see `MLPAutoencoder`.
    """

    loss_term_names = ("reconstruction", "sparsity")

    def __init__(
        self,
        input_shape,
        latent_dim,
        penalty="kl",
        sparsity_weight=3.0,
        target_rate=0.05,
        activation="sigmoid",
        **kwargs,
    ):
        super().__init__(input_shape, latent_dim, activation=activation, **kwargs)
        validation.check_choice(penalty=(penalty, PENALTIES))
        validation.check_non_negative(sparsity_weight=sparsity_weight)
        if not (isinstance(target_rate, (int, float)) and 0.0 < target_rate < 1.0):
            raise ValueError(f"target_rate ρ must lie in (0, 1); got {target_rate!r}.")
        if penalty == "kl" and activation != "sigmoid":
            raise ValueError(
                'penalty="kl" treats each code unit as a Bernoulli rate and needs activation="sigmoid"; '
                f"got {activation!r}."
            )
        self.penalty = penalty
        self.sparsity_weight = float(sparsity_weight)
        self.target_rate = float(target_rate)

    def penalties(self, x, h, training=False):
        if self.penalty == "kl":
            value = losses.kl_sparsity(h, self.target_rate)
        else:
            value = losses.l1_activity(h)
        return {"sparsity": self.sparsity_weight * value}

    def get_config(self):
        return {
            **super().get_config(),
            "penalty": self.penalty,
            "sparsity_weight": self.sparsity_weight,
            "target_rate": self.target_rate,
        }
