"""Where a compiled PETS step spends its time: a profiler trace summarised by kind of work.

PETS (Chua et al., NeurIPS 2018) as tuned by Zhang et al. (AISTATS 2021). A trace written by
`jax.profiler.trace(dir, create_perfetto_trace=True)` holds one event per executed HLO
instruction (XLA:CPU's thunks; GPU kernels likewise). Events nest (a while loop contains its
body's ops), so each event's *self* time is its duration less that of the events inside it on
the same thread. The compiled module's text (`compiled.as_text()`) names the JAX operation
behind each HLO instruction (`metadata={op_name=...}`); from both this module sums self time
by kind of work: the model's matmuls, random numbers, sorting, layout copies, physics, ...
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re

RANDOM = "random numbers"
# (kind, pattern searched in the HLO instruction's name, then in its JAX op_name); the
# first match wins, so a matmul inside the training's backward pass counts as training.
KINDS = (
    ("physics (MJX)", r"rungekutta|/step/forward|mjx|fwd_position|fwd_velocity|/solve/"),
    (RANDOM, r"threefry|_uniform|_normal|erf_inv|random_bits|random_split|fold_in"),
    ("model training", r"jvp\(|transpose\(|adam|optax"),
    ("sorting (elites)", r"sort|top_k"),
    ("model matmuls", r"ynn_fusion|dot|convolution|dot_general"),
    ("SiLU / exp / log", r"logistic|silu|exp|log"),
    ("layout copies", r"^copy|transpose|concatenate|bitcast_gather|gather|dynamic_update_slice"),
    ("loop control", r"^while|^cond|^conditional|^call"),
)
OTHER = "other elementwise"

_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (.*)$", re.M)
_OP_NAME = re.compile(r'op_name="([^"]*)"')


def op_names(hlo_text: str) -> dict[str, str]:
    """HLO instruction name -> the JAX op_name of its metadata ('' where it has none)."""
    names = {}
    for match in _INSTRUCTION.finditer(hlo_text):
        op = _OP_NAME.search(match.group(2))
        names[match.group(1)] = op.group(1) if op else ""
    return names


_COMPUTATION = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) \(.*?\{\n(.*?)\n\}", re.M | re.S)
_CALLS = re.compile(r"calls=%?([\w.\-]+)")
# Threefry-2x32 is 20 rounds of add, rotate and xor: an unrolled hash fused into an
# elementwise op (e.g. the rollout's `mean + std * noise`) leaves dozens of xors in the
# fusion, which its op_name (the root op's: "add") does not show.
HASH_XORS = 8


def hashing_instructions(hlo_text: str, min_xors: int = HASH_XORS) -> set[str]:
    """Instructions that call a computation with at least `min_xors` xors: a fused hash."""
    bodies = {m.group(1): m.group(2) for m in _COMPUTATION.finditer(hlo_text)}
    hashing = {c for c, body in bodies.items() if len(re.findall(r"\bxor\(", body)) >= min_xors}
    found = set()
    for match in _INSTRUCTION.finditer(hlo_text):
        calls = _CALLS.search(match.group(2))
        if calls and calls.group(1) in hashing:
            found.add(match.group(1))
    return found


def kind_of(instruction: str, op_name: str) -> str:
    """The kind of work of one HLO instruction (see KINDS)."""
    for kind, pattern in KINDS:
        if re.search(pattern, instruction) or re.search(pattern, op_name):
            return kind
    return OTHER


def self_times(events: list[dict]) -> dict[str, tuple[float, int]]:
    """Per HLO instruction: (summed self time in microseconds, executions)."""
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "hlo_op" in e.get("args", {}):
            by_thread[e["tid"]].append(e)
    total: dict[str, list] = collections.defaultdict(lambda: [0.0, 0])
    for thread_events in by_thread.values():
        thread_events.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack: list[list] = []  # [end, self time, name]
        for e in thread_events:
            while stack and stack[-1][0] <= e["ts"]:
                _, self_us, name = stack.pop()
                total[name][0] += self_us
            if stack:
                stack[-1][1] -= e["dur"]
            stack.append([e["ts"] + e["dur"], float(e["dur"]), e["args"]["hlo_op"]])
            total[e["args"]["hlo_op"]][1] += 1
        for _, self_us, name in stack:
            total[name][0] += self_us
    return {name: (t, n) for name, (t, n) in total.items()}


def latest_trace(profile_dir: str) -> str:
    """The newest perfetto_trace.json.gz under a `jax.profiler.trace` directory."""
    pattern = os.path.join(profile_dir, "plugins", "profile", "*", "perfetto_trace.json.gz")
    paths = glob.glob(pattern)
    if not paths:
        raise FileNotFoundError(f"no perfetto_trace.json.gz under {profile_dir}/plugins/profile")
    return max(paths, key=os.path.getmtime)


def summarize(trace_path: str, hlo_text: str, top: int = 12) -> dict:
    """Self time of the traced ops by kind of work, and the `top` instructions.

    Args:
      trace_path: a perfetto trace (.json.gz) of calls of ONE compiled program.
      hlo_text: that program's `compiled.as_text()`.
      top: how many single instructions to list.

    Returns:
      {"total_ms", "executions", "kinds": {kind: {"ms", "share"}} (largest first),
       "top": [{"op", "jax_op", "kind", "ms", "share", "executions"}]}; the trace's profiler
      may drop events past about a million, so profile a short call.
    """
    with gzip.open(trace_path, "rt") as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    names = op_names(hlo_text)
    hashing = hashing_instructions(hlo_text)  # counted as random numbers, whatever the root
    times = self_times(events)
    total_us = sum(t for t, _ in times.values()) or 1.0
    kinds: dict[str, float] = collections.Counter()
    rows = []
    for op, (t, n) in times.items():
        kind = RANDOM if op in hashing else kind_of(op, names.get(op, ""))
        kinds[kind] += t
        rows.append(dict(op=op, jax_op=names.get(op, ""), kind=kind, ms=t / 1e3, executions=n))
    rows.sort(key=lambda r: -r["ms"])
    for r in rows:
        r["share"] = r["ms"] * 1e3 / total_us
    return dict(
        total_ms=total_us / 1e3,
        executions=sum(n for _, n in times.values()),
        kinds={k: dict(ms=t / 1e3, share=t / total_us) for k, t in kinds.most_common()},
        top=rows[:top],
    )


def format_summary(summary: dict) -> list[str]:
    lines = [
        f"profile: {summary['total_ms']:.1f} ms of op self time in "
        f"{summary['executions']} op executions"
    ]
    for kind, v in summary["kinds"].items():
        lines.append(f"  {100 * v['share']:5.1f}%  {v['ms']:9.1f} ms  {kind}")
    return lines
