"""Analyses of tuning runs: plots."""

from jaxmbrl.analysis.plots import load_members, plot_run

__all__ = ["load_members", "plot_run"]
