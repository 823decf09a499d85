"""Tests of the regression guard `benchmarks.throughput --compare=REV` (profiling.compare).

Nothing here times anything (timing belongs to the benchmarks): the rev is resolved or
refused before anything compiles, the other version's tree is exported from git, and the
ratios are the other version's time over this tree's, round by round.
"""

import os
import subprocess
import sys

import pytest

from jaxmbrl.profiling import compare

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_resolve_rev_gives_the_commit_and_refuses_unknown_names():
    head = subprocess.run(
        ["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert compare.resolve_rev("HEAD", REPO) == head
    for bad in ("no-such-rev-xyz", "--all", ""):
        with pytest.raises(ValueError, match="compare="):
            compare.resolve_rev(bad, REPO)


def test_export_tree_holds_that_version_of_the_package(tmp_path):
    commit = compare.resolve_rev("HEAD", REPO)
    tree = compare.export_tree(commit, REPO, cache=str(tmp_path))
    assert tree == os.path.join(str(tmp_path), commit)
    assert os.path.isfile(os.path.join(tree, "jaxmbrl", "planning", "cem.py"))
    assert os.path.isfile(os.path.join(tree, "benchmarks", "throughput.py"))
    assert compare.export_tree(commit, REPO, cache=str(tmp_path)) == tree  # reused


def test_summarize_ratios_are_other_over_this_per_round():
    this = [dict(seconds=s, cpu_seconds=2 * s) for s in (1.0, 2.0, 4.0)]
    other = [dict(seconds=s, cpu_seconds=3 * s) for s in (1.5, 2.0, 2.0)]
    s = compare.summarize(this, other, (100.0, 300.0))
    assert s["seconds"]["ratios"] == [1.5, 1.0, 0.5]
    assert (s["seconds"]["ratio_median"], s["seconds"]["ratio_min"]) == (1.0, 0.5)
    assert s["seconds"]["ratio_max"] == 1.5
    assert s["seconds"]["ratio_of_best"] == 1.5  # 1.5 s / 1.0 s
    assert s["cpu_seconds"]["ratios"] == [2.25, 1.5, 0.75]
    assert s["this_transitions_per_second"] == 100.0  # 100 transitions in the best 1.0 s
    assert s["other_transitions_per_second"] == 200.0  # 300 in 1.5 s
    assert (s["this_cores"], s["other_cores"]) == (2.0, 3.0)  # CPU s / wall s of the best


def test_throughput_binary_refuses_a_bad_rev_in_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.throughput",
            "--population=1",
            "--compare=no-such-rev-xyz",
            f"--out={tmp_path}/c",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-rev-xyz" in lines[0], proc.stderr
    assert not (tmp_path / "c").exists()


def test_compare_times_one_population_size():
    from jaxmbrl.profiling import throughput

    throughput.ThroughputConfig(population=(2,), compare="HEAD").validate()
    with pytest.raises(ValueError, match="one population size"):
        throughput.ThroughputConfig(population=(1, 2), compare="HEAD").validate()
    with pytest.raises(ValueError, match="compare_rounds"):
        throughput.ThroughputConfig(population=(1,), compare="HEAD", compare_rounds=2).validate()
