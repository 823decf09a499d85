"""Analyses of tuning runs (Zhang et al., AISTATS 2021): plots of returns and schedules."""

from jaxmbrl.analysis.plots import load_members, plot_run, plot_trials

__all__ = ["load_members", "plot_run", "plot_trials"]
