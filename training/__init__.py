"""Training of keras-ae models: the `python -m training.train` entry point,
its configuration, distribution strategies and TensorBoard callbacks."""
