"""Profiling of PETS populations (Chua et al. 2018; Zhang et al., AISTATS 2021).

`timing` (compile and call timing, the matmul roofline, memory; generic), `flops` (planner
FLOP and padding accounting, the paper-scale projection), `throughput` (a population
measured per size), `reports`, `planner_costs` (where a planning step's time goes),
`env_throughput` (MJX beside MuJoCo C) and `plot` (table and PNG of a throughput result).
"""
