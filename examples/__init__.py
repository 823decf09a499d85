"""Runnable examples of `jaxmbrl.tuners` on problems outside jaxmbrl (run with `python -m`)."""
