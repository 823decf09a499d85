"""Table and plot of a population-throughput profile (`jaxmbrl.profiling.throughput.run`'s result).

Throughput of vmapped PETS agents (Chua et al., NeurIPS 2018) in the setting of Zhang et al.,
"On the Importance of Hyperparameter Optimization for Model-based Reinforcement Learning"
(AISTATS 2021).
"""

from __future__ import annotations

from matplotlib.figure import Figure

_COLUMNS = (
    ("N", lambda r: r["population"]),
    ("compile s", lambda r: f"{r['compile_seconds_total']:.1f}"),
    ("trial s", lambda r: f"{r['trial_seconds']:.3f}"),
    ("env/s pop", lambda r: f"{r['env_steps_per_second']:.1f}"),
    ("env/s MJX", lambda r: f"{r['env_alone']['steps_per_second']:.0f}"),
    ("phys %", lambda r: f"{100 * r['physics_share_of_trial']:.1f}"),
    ("train smp/s", lambda r: f"{r['train']['samples_per_second']:.0f}"),
    ("plan tr/s", lambda r: f"{r['planner']['transitions_per_second']:.3g}"),
    ("plan GF/s", lambda r: f"{r['planner']['flops_per_second'] / 1e9:.1f}"),
    ("matmul GF/s", lambda r: f"{r['planner']['matmul_flops_per_second'] / 1e9:.0f}"),
    ("roofline", lambda r: f"{r['planner']['roofline_ratio']:.2f}"),
    ("roofl cpu", lambda r: f"{r['planner']['roofline_ratio_cpu']:.2f}"),
    ("eff trial", lambda r: f"{r['vmap_efficiency']['trial']:.2f}"),
    ("eff train", lambda r: f"{r['vmap_efficiency']['train']:.2f}"),
    ("eff plan", lambda r: f"{r['vmap_efficiency']['planner']:.2f}"),
    ("eff pl cpu", lambda r: f"{r['vmap_efficiency_cpu']['planner']:.2f}"),
    ("peak MB", lambda r: f"{r['peak_memory']['bytes'] / 2**20:.0f}"),
)


def table(result: dict) -> str:
    """The per-population table and the summary lines printed on stdout."""
    lines = [" ".join(f"{name:>11}" for name, _ in _COLUMNS)]
    for r in result["results"]:
        lines.append(" ".join(f"{str(get(r)):>11}" for _, get in _COLUMNS))
    m, pad, proj = result["matmul"], result["padding"], result["paper_scale_projection"]
    fwd = result["model_forward"]
    best_matmul = max(
        [m["flops_per_second"], fwd["matmul_flops_per_second"]]
        + [r["planner"]["matmul_flops_per_second"] for r in result["results"]]
    )
    lines.append(
        f"matmul {m['size']}^3 float32: best {best_matmul / 1e9:.1f} GFLOP/s in this run; "
        f"memory: {result['results'][-1]['peak_memory']['source']}"
    )
    lines.append(
        f"model forward alone ({fwd['steps']} steps x {fwd['rows']} rows per elite, the "
        f"planner's ceiling): {fwd['flops_per_second'] / 1e9:.1f} GFLOP/s, "
        f"{fwd['roofline_ratio']:.2f} of the matmul ({fwd['roofline_ratio_cpu']:.2f} per CPU-s)"
    )
    lines.append(
        f"padding (planning space, maxima {pad['maxima']}): default "
        f"{100 * pad['default']['padding_share']:.0f}% "
        f"({100 * pad['default']['padding_share_at_maxima']:.0f}% if loops run to the maxima), "
        f"space mean {100 * pad['space_mean']['padding_share']:.0f}% "
        f"({100 * pad['space_mean']['padding_share_at_maxima']:.0f}%), population of "
        f"{pad['members']} from the prior: "
        f"{100 * pad['population_accelerator_default']['padding_share']:.0f}% in "
        f"{pad['population_accelerator_default']['groups']} sorted vmapped groups "
        f"(accelerator default), "
        f"{100 * pad['population_cpu_default']['padding_share']:.0f}% one at a time (CPU), "
        f"{100 * pad['population_one_vmap']['padding_share']:.0f}% in one vmap"
    )
    lines.append(
        f"paper-scale projection (40 x 300 half_cheetah trials x 1000 steps, {proj['basis']}): "
        f"{proj['total_days']:.1f} days = planner {proj['planner_seconds'] / 86400:.1f} + train "
        f"{proj['train_seconds'] / 86400:.2f} + physics {proj['env_seconds'] / 86400:.3f} days"
    )
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    """Writes a PNG: rates vs population size, and scaling efficiency / roofline ratio."""
    rs = result["results"]
    sizes = [r["population"] for r in rs]
    # A Figure of its own (no pyplot state): safe in any process, any backend.
    fig = Figure(figsize=(11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    series = {
        "env steps/s (population program)": [r["env_steps_per_second"] for r in rs],
        "env steps/s (MJX alone)": [r["env_alone"]["steps_per_second"] for r in rs],
        "train samples/s": [r["train"]["samples_per_second"] for r in rs],
        "planner transitions/s": [r["planner"]["transitions_per_second"] for r in rs],
    }
    for label, ys in series.items():
        ax1.plot(sizes, ys, "o-", label=label)
    ax1.set(
        xscale="log",
        yscale="log",
        xlabel="population size N",
        ylabel="per second",
        title=f"throughput ({result['config']['env']}, {result['config']['preset']})",
    )
    ax1.set_xticks(sizes, [str(s) for s in sizes])
    ax1.legend(fontsize=7)
    for name in ("trial", "env_alone", "train", "planner"):
        ax2.plot(sizes, [r["vmap_efficiency"][name] for r in rs], "o-", label=name)
    ax2.plot(sizes, [r["planner"]["roofline_ratio"] for r in rs], "k--", label="planner/matmul")
    ax2.plot(
        sizes, [r["vmap_efficiency_cpu"]["planner"] for r in rs], "o:", label="planner (CPU s)"
    )
    ax2.plot(sizes, [sizes[0] / n for n in sizes], ":", color="grey", label="N0/N (saturated)")
    ax2.axhline(1.0, color="grey", lw=0.5)
    ax2.set(
        xscale="log",
        xlabel="population size N",
        ylabel="ratio",
        title="scaling efficiency (N members vs N x one) and roofline ratio",
    )
    ax2.set_xticks(sizes, [str(s) for s in sizes])
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
