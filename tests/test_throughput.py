"""Tests of the population-throughput profiler (jaxmbrl.throughput, jaxmbrl.profiling, binary)."""

import json
import math
import os

import cli
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from compiles import count_compiles

from jaxmbrl import runtime
from jaxmbrl.profiling import flops, planner_costs, throughput, timing, trace_ops
from jaxmbrl.profiling import plot as throughput_plot
from jaxmbrl.tuners.space import Float, Int, SearchSpace

DEVICES = 2  # XLA's forced CPU device count of the profiler's process


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """The profiler end to end, as a user runs it: the binary in a process with 2 CPU
    devices, members split over them (populations 2 and 4). One run serves both what
    test_sharding's per-device test checked (merged here: total and per-device rates) and
    the report of every measurement."""
    out = tmp_path_factory.mktemp("throughput")
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={DEVICES}")
    flags = ["--env=cartpole", "--preset=tiny", "--steps=3", "--train_rows=64", "--min_seconds=0"]
    result = cli.subprocess_run(
        "benchmarks.throughput",
        *flags,
        "--population=2,4",
        f"--devices={DEVICES}",
        f"--out={out}",
        env=env,
        timeout=1500,
    )
    assert result.code == 0, result.stderr[-3000:]
    with open(out / "throughput.json") as f:
        return json.load(f), result, out


def _positive(x):
    return isinstance(x, float | int) and math.isfinite(x) and x > 0


@pytest.mark.slow
def test_run_reports_every_measurement(profiled, tmp_path):
    result, proc, out = profiled
    assert [r["population"] for r in result["results"]] == [2, 4]
    assert result["device"]["devices_used"] == DEVICES
    for r in result["results"]:
        for key in ("population_step", "env", "train", "planner"):
            assert r["compile_seconds"][key] >= 0
        assert r["peak_memory"]["bytes"] > 0 and r["peak_memory"]["source"]
        for value in (
            r["trial_seconds"],
            r["env_steps_per_second"],
            r["env_alone"]["steps_per_second"],
            r["train"]["samples_per_second"],
            r["planner"]["transitions_per_second"],
            r["planner"]["flops_per_second"],
            r["planner"]["matmul_flops_per_second"],
            r["planner"]["roofline_ratio"],
            r["physics_share_of_trial"],
        ):
            assert _positive(value)
        # samples = epochs x rows: every member (each on its device) trains 5 epochs on
        # full 64-row buffers.
        assert r["train"]["samples"] == r["population"] * 5 * 64
        assert set(r["vmap_efficiency"]) == {"trial", "env_alone", "train", "planner"}
        assert set(r["batching_speedup"]) == set(r["vmap_efficiency"])
        # Total rates and each device's share.
        per = r["per_device"]
        assert r["devices"] == DEVICES
        assert per["env_steps_per_second"] == pytest.approx(r["env_steps_per_second"] / DEVICES)
        assert per["train_samples_per_second"] == pytest.approx(
            r["train"]["samples_per_second"] / DEVICES
        )
        assert per["planner_transitions_per_second"] == pytest.approx(
            r["planner"]["transitions_per_second"] / DEVICES
        )
    assert all(v == pytest.approx(1.0) for v in result["results"][0]["vmap_efficiency"].values())
    assert _positive(result["matmul"]["flops_per_second"])
    assert f"population 4 on {DEVICES} device(s)" in proc.stdout and "per device" in proc.stdout
    assert (out / "throughput.png").stat().st_size > 0

    # The model alone at the planner's batch: every particle row of every candidate, per step.
    fwd, pc, plan = result["model_forward"], result["pets_config"], result["results"][0]["planner"]
    assert fwd["rows"] * pc["num_elites"] == pc["max_population"] * pc["num_particles"]
    per_row = plan["flops"] / plan["transitions"]
    assert fwd["flops"] == pytest.approx(fwd["steps"] * pc["num_elites"] * fwd["rows"] * per_row)
    assert _positive(fwd["flops_per_second"]) and _positive(fwd["roofline_ratio"])

    pad = result["padding"]
    assert pad["maxima"] == {"iterations": 8, "population": 700, "horizon": 60}
    for case in ("default", "space_mean"):
        # Alone, an agent at the defaults pads nothing (500 = 5 chunks of 100, own loops).
        assert 0.0 <= pad[case]["padding_share"] < pad[case]["padding_share_at_maxima"] < 1.0
    for case in ("accelerator_default", "cpu_default", "one_vmap"):
        assert 0.0 < pad[f"population_{case}"]["padding_share"] < 1.0

    proj = result["paper_scale_projection"]
    assert proj["experiment_members"] == 40 and proj["experiment_trials"] == 300
    parts = proj["planner_seconds"] + proj["train_seconds"] + proj["env_seconds"]
    assert proj["total_seconds"] == pytest.approx(parts)

    json_path, png = tmp_path / "t.json", tmp_path / "t.png"
    runtime.write_json(str(json_path), result)
    throughput_plot.plot(result, str(png))
    assert json.loads(json_path.read_text())["results"][1]["population"] == 4
    assert png.stat().st_size > 0
    lines = throughput_plot.table(result).splitlines()
    assert lines[0].split()[0] == "N" and lines[1].split()[0] == "2"


def test_flop_counts_hand_computed():
    # Two agents: 2 iterations x 10 candidates x horizon 4, and 3 x 20 x 5; 2 particles.
    work = flops.planner_work(1000, [2, 3], [10, 20], [4, 5], particles=2)
    assert work["transitions"] == 2 * 10 * 4 * 2 + 3 * 20 * 5 * 2 == 760
    assert work["flops"] == 760 * 1000
    # Padded + vmapped: every agent runs max(iterations) x max_population x max(horizon).
    assert flops.executed_planner_flops(1500, [2, 3], [4, 5], 30, 2) == 2 * 3 * 30 * 5 * 2 * 1500

    maxima = dict(iterations=8, population=700, horizon=60)
    share = flops.padding_share(100, 100, 2, maxima, dict(iterations=5, population=500, horizon=30))
    assert share["needed_flops"] == 5 * 500 * 30 * 2 * 100
    assert share["executed_flops"] == 5 * 700 * 30 * 2 * 100
    assert share["padding_share"] == pytest.approx(2 / 7)
    assert share["padding_share_at_maxima"] == pytest.approx(1 - 15e6 / (8 * 700 * 60 * 2 * 100))

    # One member at a time, each loop stops at the member's own horizon and iterations.
    planning = SearchSpace(
        (Int("num_cem_iters", 1, 8), Int("cem_popsize", 699, 700), Int("plan_hor", 1, 60))
    )
    maxima = dict(iterations=8, population=700, horizon=60)
    pad = lambda members, batch: flops.population_padding_share(
        planning, 1.0, 1.0, 1, maxima, members, jax.random.key(0), member_batch=batch
    )["padding_share"]
    assert pad(4, None) == pytest.approx(pad(4, 4)) and pad(4, None) > pad(4, 2) > pad(4, 1)
    # Alone, only candidates are padded: share = 1 - E[population] / 700 (p independent of i, h).
    assert pad(4, 1) == pytest.approx(1 - 699.5 / 700, abs=3e-4)

    space = SearchSpace((Int("num_cem_iters", 3, 8), Float("x", 0.0, 1.0)))
    means = flops.space_means(space)
    assert means["num_cem_iters"] == pytest.approx(5.5, abs=1e-3)
    assert means["x"] == pytest.approx(0.5, abs=1e-3)

    assert flops.scaling_efficiency([1, 2, 4], [10.0, 15.0, 20.0]) == [1.0, 0.75, 0.5]

    experiment = dict(
        members=2, trials=3, steps=10, iterations=1, population=2, particles=1, horizon=3, epochs=2
    )
    proj = flops.paper_projection(
        planner_flops_per_second=100.0,
        train_samples_per_second=8.0,
        env_steps_per_second=4.0,
        paper_forward_flops=10.0,
        measured_forward_flops=5.0,
        experiment=experiment,
    )
    assert proj["planner_transitions"] == 2 * 2 * 10 * (1 * 2 * 1 * 3) == 240
    assert proj["planner_seconds"] == pytest.approx(240 * 10 / 100)
    assert proj["train_samples"] == 2 * 2 * 10 * (1 + 2 + 3) == 240
    assert proj["train_seconds"] == pytest.approx(240 * 2 / 8)  # paper model: 2x the FLOPs
    assert proj["env_seconds"] == pytest.approx(2 * 3 * 10 / 4)


class _FixedSpace:
    """A 'space' whose every draw is the same members (i, p, h): hand-computable padding."""

    dim = 1

    def __init__(self, members):
        self.members = np.asarray(members, np.float64)  # [M, 3]

    def from_unit(self, unit):
        shape = unit.shape[:2]
        names = ("num_cem_iters", "cem_popsize", "plan_hor")
        return {n: np.broadcast_to(self.members[:, k], shape) for k, n in enumerate(names)}


def test_padding_accounting_of_chunks_groups_and_flat_loop():
    maxima = dict(iterations=8, population=30, horizon=60)
    # Chunks of 8: populations 10 and 20 run 16 and 24 candidates.
    args = (1500, [2, 3], [4, 5], 30, 2)
    kw = dict(population=[10, 20], candidate_chunk=8)
    assert flops.executed_planner_flops(*args, **kw) == 2 * 3 * 24 * 5 * 2 * 1500
    assert (
        flops.executed_planner_flops(*args, **kw, flat=True)
        == 2 * max(2 * 16 * 4, 3 * 24 * 5) * 2 * 1500
    )
    share = flops.padding_share(1, 1, 1, maxima, dict(iterations=2, population=20, horizon=3), 8)
    assert share["padding_share"] == pytest.approx(1 - 20 / 24)
    assert share["padding_share_at_maxima"] == pytest.approx(1 - 2 * 20 * 3 / (8 * 32 * 60))

    def pad(members, member_batch, chunk=10, flat=True):
        return flops.population_padding_share(
            _FixedSpace(members),
            1.0,
            1.0,
            1,
            maxima,
            len(members),
            jax.random.key(0),
            draws=2,
            member_batch=member_batch,
            candidate_chunk=chunk,
            flat=flat,
        )["padding_share"]

    # Sorted by work, groups of 2 hold equal members: nothing padded; unsorted they would not
    # be: (2 x 40 + 2 x 40) executed for 100 needed.
    mixed = [(1, 10, 1), (2, 10, 2), (1, 10, 1), (2, 10, 2)]
    assert pad(mixed, 2) == pytest.approx(0.0)
    assert pad(mixed, None) == pytest.approx(1 - 100 / 160)
    # Population 15 in chunks of 10 evaluates 20 candidates.
    assert pad([(1, 15, 1)] * 2, 1) == pytest.approx(0.25)
    # Equal products, different factors: the flat loop pays max(i * h) = 4, nested loops
    # max(i) * max(h) = 16.
    crossed = [(1, 10, 4), (4, 10, 1)]
    assert pad(crossed, None) == pytest.approx(0.0)
    assert pad(crossed, None, flat=False) == pytest.approx(0.75)


def test_matmul_roofline_counts_what_xla_counts():
    n = 64
    a = jnp.ones((n, n), jnp.float32)
    compiled = jax.jit(jnp.dot).lower(a, a).compile()
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list | tuple) else analysis
    roof = timing.matmul_roofline(n, calls=1)
    assert roof["flops"] == analysis["flops"] == 2 * n**3
    assert _positive(roof["flops_per_second"]) and _positive(roof["flops_per_cpu_second"])


@pytest.mark.parametrize(
    "flag, needle",
    [
        ("--population=1,x", "--population=1,x"),
        ("--preset=huge", "preset"),
        ("--member_batch=-1", "member_batch=-1"),
    ],
)
def test_bad_flags_exit_2_with_one_line(flag, needle, tmp_path):
    """In-process through the binary's parser and `main` (the exit status of a process:
    `test_bad_flag_exits_2_in_a_process`)."""
    with count_compiles() as compiled:
        result = cli.run("benchmarks.throughput", flag, f"--out={tmp_path}/t.json")
    assert result.code == 2 and compiled.programs() == []
    assert len(result.lines) == 1 and "error" in result.lines[0] and needle in result.lines[0]
    assert not (tmp_path / "t.json").exists()


def test_profile_dir_that_is_a_file_exits_2_before_compiling(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with count_compiles() as compiled:
        result = cli.run(
            "benchmarks.throughput", f"--profile_dir={tmp_path}/a_file", f"--out={tmp_path}/o"
        )
    assert result.code == 2 and compiled.programs() == []
    assert len(result.lines) == 1
    assert f"--profile_dir={tmp_path}/a_file is a file" in result.lines[0]


def test_sizes_not_dividing_over_the_devices_exit_2_in_a_process(tmp_path):
    """(from test_sharding) A population size that does not divide over --devices: one
    line, exit 2, before --out is touched."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={DEVICES}")
    result = cli.subprocess_run(
        "benchmarks.throughput",
        "--population=3,4",
        f"--devices={DEVICES}",
        f"--out={tmp_path}/t",
        env=env,
    )
    assert result.code == 2 and len(result.lines) == 1, result.stderr
    assert f"population=3 does not divide over devices={DEVICES}" in result.lines[0]
    assert not (tmp_path / "t").exists()


@pytest.mark.slow
def test_bad_flag_exits_2_in_a_process(tmp_path):
    result = cli.subprocess_run("benchmarks.throughput", "--preset=huge", f"--out={tmp_path}/t")
    assert result.code == 2
    assert len(result.lines) == 1 and "preset" in result.lines[0], result.stderr
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    "flag, needle", [("--chunks=100,0", "chunks"), ("--chunks=50,50", "chunks=[50, 50]")]
)
def test_padding_binary_bad_flags_exit_2_with_one_line(flag, needle, tmp_path):
    """In-process through the binary's parser and `main`, nothing compiled."""
    with count_compiles() as compiled:
        result = cli.run("benchmarks.padding", flag, f"--out={tmp_path}/p")
    assert result.code == 2 and compiled.programs() == []
    assert len(result.lines) == 1 and "error" in result.lines[0] and needle in result.lines[0]
    assert not (tmp_path / "p" / "padding.json").exists()


def test_config_validation_names_the_bad_value():
    with pytest.raises(ValueError, match="population=\\(0, 2\\)"):
        throughput.ThroughputConfig(population=(0, 2)).validate()
    with pytest.raises(ValueError, match="unknown env 'moon'"):
        throughput.ThroughputConfig(env="moon").validate()
    assert np.isfinite(flops.scaling_efficiency([2], [3.0])[0])


def test_prefer_wide_vectors_only_on_avx512_and_never_overrides(tmp_path, monkeypatch):
    avx512 = tmp_path / "avx512"
    avx512.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    avx2 = tmp_path / "avx2"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    monkeypatch.setattr(runtime.platform, "machine", lambda: "x86_64")
    # Pretend no backend exists yet (this test process already has one).
    monkeypatch.setattr(runtime, "_backend_initialized", lambda: False)

    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    assert runtime.prefer_wide_vectors(str(avx2)) is None
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"
    assert runtime.prefer_wide_vectors(str(avx512)) == runtime.WIDE_VECTOR_FLAG
    assert os.environ["XLA_FLAGS"] == f"--xla_dump_to=/tmp/x {runtime.WIDE_VECTOR_FLAG}"
    assert runtime.prefer_wide_vectors(str(avx512)) is None  # already there: not repeated

    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_prefer_vector_width=256")  # the user's choice
    assert runtime.prefer_wide_vectors(str(avx512)) is None
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_prefer_vector_width=256"

    monkeypatch.delenv("XLA_FLAGS")
    monkeypatch.setattr(runtime.platform, "machine", lambda: "aarch64")
    assert runtime.prefer_wide_vectors(str(avx512)) is None and "XLA_FLAGS" not in os.environ
    monkeypatch.setattr(runtime.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(runtime, "_backend_initialized", lambda: True)  # too late to matter
    assert runtime.prefer_wide_vectors(str(avx512)) is None and "XLA_FLAGS" not in os.environ


def test_unrolled_threefry_gives_random123s_known_answers_without_a_loop():
    # conftest calls runtime.unroll_threefry(), as the binaries do; calling it again is a no-op.
    assert runtime.unroll_threefry()
    # Random123's known-answer vectors for threefry2x32 (20 rounds): (key, counter) -> output.
    kat = [
        ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ]
    from jax.extend.random import threefry_2x32

    hash_fn = jax.jit(threefry_2x32)
    for key, counter, expected in kat:
        out = hash_fn(np.array(key, np.uint32), np.array(counter, np.uint32))
        assert [int(v) for v in out] == list(expected)
    # The point of it: on the CPU the hash is straight-line code, not a rolled while loop.
    draw = jax.jit(lambda k: jax.random.normal(k, (64, 3)))
    assert "while" not in draw.lower(jax.random.key(0)).as_text()


def test_compare_against_matmul_interleaves_and_keeps_the_best():
    n = 32
    x = jnp.ones((n, n), jnp.float32)
    fast = jax.jit(lambda a: a + 1.0).lower(x).compile()
    dot = jax.jit(jnp.dot).lower(x, x).compile()
    outputs, timings = timing.compare_against_matmul(
        {"add": (fast, (x,), 1.0 * n * n), "dot": (dot, (x, x), 2.0 * n**3)},
        min_seconds=0.0,
        min_rounds=3,
        size=64,
    )
    np.testing.assert_array_equal(outputs["add"], x + 1.0)
    assert {t["calls"] for t in timings.values()} == {3}
    # One matmul rate for the whole comparison; each ratio is that program's best over it.
    assert timings["add"]["matmul_flops_per_second"] == timings["dot"]["matmul_flops_per_second"]
    for t in timings.values():
        assert t["roofline_ratio"] == pytest.approx(
            t["flops_per_second"] / t["matmul_flops_per_second"]
        )


@pytest.mark.slow
def test_planner_costs_ablation_runs_every_variant():
    result = planner_costs.ablate("cartpole", "tiny", min_seconds=0.0)
    timings = result["timings"]
    assert list(timings) == [*planner_costs.VARIANTS, "model forward alone"]
    # The variants keep the planner's work: the same useful FLOPs, other costs dropped.
    flops = {name: t["flops_per_second"] * t["seconds"] for name, t in timings.items()}
    for name in planner_costs.VARIANTS:
        assert flops[name] == pytest.approx(flops["planner"], rel=1e-6)
    cfg = result["pets_config"]
    per_step = cfg["max_population"] * cfg["num_particles"]  # rows of one forward step
    assert flops["model forward alone"] == pytest.approx(
        flops["planner"] / (cfg["max_iterations"] * per_step) * per_step, rel=1e-6
    )
    assert all(_positive(t["roofline_ratio"]) for t in timings.values())


def test_trace_ops_self_time_subtracts_nested_ops_and_sorts_kinds():
    ev = lambda name, ts, dur, tid=1: dict(ph="X", ts=ts, dur=dur, tid=tid, args={"hlo_op": name})
    events = [
        ev("while.1", 0, 100),  # contains the two below: 100 - 30 - 50 = 20 of its own
        ev("ynn_fusion.3", 10, 30),
        ev("sort.2", 50, 50),
        ev("ynn_fusion.3", 0, 40, tid=2),  # another thread: not nested in while.1
        dict(ph="X", ts=0, dur=500, tid=1, name="ThunkExecutor::Execute", args={}),  # not an op
    ]
    times = trace_ops.self_times(events)
    assert times == {"while.1": (20.0, 1), "ynn_fusion.3": (70.0, 2), "sort.2": (50.0, 1)}
    hlo = (
        '  %ynn_fusion.3 = f32[3,32]{1,0} fusion(%a), kind=kCustom\n'
        '  %sort.2 = f32[9]{0} sort(%b), metadata={op_name="jit(f)/cem/argsort" source_line=3}\n'
        '  %multiply_fusion = f32[9]{0} fusion(%c), metadata={op_name="jit(f)/_normal/erf_inv"}\n'
    )
    assert trace_ops.op_names(hlo)["sort.2"] == "jit(f)/cem/argsort"
    assert trace_ops.kind_of("multiply_fusion", "jit(f)/_normal/erf_inv") == "random numbers"
    assert trace_ops.kind_of("ynn_fusion.3", "") == "model matmuls"
    assert trace_ops.kind_of("while.1", "") == "loop control"
    # A hash fused into an add is named by its root ("add"); its xors make it random numbers.
    def module(xors):
        xor = "  %xor.{} = u32[4]{{0}} xor(u32[4]{{0}} %p, u32[4]{{0}} %p)\n"
        body = "".join(xor.format(i) for i in range(xors))
        return (
            f"%fused_computation.1 (p: u32[4]) -> f32[4] {{\n{body}"
            "  ROOT %add.9 = f32[4]{0} add(%x, %y)\n}\n\n"
            "ENTRY %main (a: f32[4]) -> f32[4] {\n  ROOT %add_add_fusion.4 = f32[4]{0} "
            'fusion(%a), kind=kLoop, calls=%fused_computation.1, metadata={op_name="add"}\n}\n'
        )

    assert trace_ops.hashing_instructions(module(trace_ops.HASH_XORS)) == {"add_add_fusion.4"}
    assert trace_ops.hashing_instructions(module(trace_ops.HASH_XORS - 1)) == set()


def test_trace_ops_summarizes_a_real_cpu_trace(tmp_path):
    x = jnp.ones((512, 512), jnp.float32)
    k = jax.random.key(0)
    g = lambda a, k: jnp.sort(jnp.tanh(a @ a @ a) + jax.random.normal(k, a.shape), axis=None)
    f = jax.jit(g).lower(x, k).compile()
    jax.block_until_ready(f(x, k))
    with jax.profiler.trace(str(tmp_path), create_perfetto_trace=True):
        jax.block_until_ready(f(x, k))
    summary = trace_ops.summarize(trace_ops.latest_trace(str(tmp_path)), f.as_text())
    assert summary["total_ms"] > 0 and summary["executions"] >= 2
    assert {"model matmuls", "sorting (elites)", "random numbers"} <= set(summary["kinds"])
    assert sum(v["share"] for v in summary["kinds"].values()) == pytest.approx(1.0)
    with pytest.raises(FileNotFoundError, match="perfetto_trace"):
        trace_ops.latest_trace(str(tmp_path / "empty"))
