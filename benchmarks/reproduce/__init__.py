"""Reproductions of the papers behind the zoo, on real data: numbers to JSON, figures to PNG.

    python -m benchmarks.reproduce pca        # linear/tied AE vs PCA on MNIST (item 1)
    python -m benchmarks.reproduce vae --variant vae --binarization dynamic --minutes 35   # VAE/IWAE NLL (item 2)
    python -m benchmarks.reproduce manifold   # Kingma & Welling's 2-D manifolds and samples (item 3)
    python -m benchmarks.reproduce probe      # logistic-regression probe on codes (item 4)
    python -m benchmarks.reproduce filters    # denoising vs weight decay filters; KL-sparse (item 5)
    python -m benchmarks.reproduce sample_quality   # Fréchet distance and KID: VAE, AE, DAE, prior vs ex-post
    python -m benchmarks.reproduce one_class  # one-class anomaly detection AUROC, MNIST and Fashion-MNIST
    python -m benchmarks.reproduce vqvae      # VQ-VAE and PixelCNN prior on MNIST, keras-io's setting
    python -m benchmarks.reproduce generative # VAE, VQ-VAE, WAE, RAE, CVAE: reconstruction and sample quality
    python -m benchmarks.reproduce all --quick

Each study is a module of this package with `run(args)` and, where it has flags of its own,
`add_arguments(parser)`; `STUDIES` names them. Every study takes --data-dir (default ../shared/data),
--out (default docs/results), --seed, --quick (a smoke run; its numbers mean nothing) and --epochs.
A study writes OUT/<name>.json (its protocol, written from the configuration the run used, its results
and wall time) and OUT/<name>_*.png; model weights go to runs/reproduce/ (git-ignored).
Hyperparameters were fixed in advance or chosen on the validation split; the test split is only scored.
Wall times: docs/results.md for the full runs, benchmarks/README.md for --quick.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.reproduce import filters, generative, manifold, one_class, pca, probe, sample_quality, vae, vqvae  # noqa: E402

# In the order `all` runs them: the fixed-length studies first, the VAE (a time budget) last.
STUDIES = {
    "pca": pca,
    "filters": filters,
    "manifold": manifold,
    "probe": probe,
    "sample_quality": sample_quality,
    "one_class": one_class,
    "vqvae": vqvae,
    "generative": generative,
    "vae": vae,
}
