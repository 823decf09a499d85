"""jaxmbrl: hyperparameter optimisation of model-based RL (PETS) on one accelerator."""

__version__ = "0.1.0"
