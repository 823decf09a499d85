"""The tuner comparison's settings and its summary on constructed results (no JAX program):
arms parsed and checked, each pair's interval read the right way round."""

import pytest

from jaxmbrl.analysis import comparison as report
from jaxmbrl.experiments import comparison


def _arm(best, population_mean=None):
    n = len(best)
    return dict(
        seeds=list(range(n)),
        best=best,
        population_mean=population_mean or [None] * n,
        member_trials=[10] * n,
        wall=[1.0] * n,
        compile=[0.0] * n,
    )


@pytest.mark.parametrize(
    "arms, pairs, message",
    [
        (("pb3:4",), (), "arms entry 'pb3:4' is not TUNER:POPULATION"),
        (("pb2:0",), (), "arms entry 'pb2:0' is not TUNER:POPULATION"),
        (("replay:4",), (), "arms entry 'replay:4' is not TUNER:POPULATION"),
        (("pb2:4", "pb2:4"), (), "name an arm twice"),
        (("pb2:4", "pbt:8"), ("pb2:4/pbt:4",), "pairs entry 'pb2:4/pbt:4' names an arm not"),
        (("pb2:4", "pbt:8"), ("pb2:4-pbt:8",), "pairs entry 'pb2:4-pbt:8' is not A/B"),
    ],
)
def test_bad_arms_and_pairs_name_the_value(arms, pairs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        comparison.CompareConfig(arms=arms, pairs=pairs).validate()


def test_a_run_setting_out_of_range_is_refused_before_running():
    """Hyperband needs trials >= ready_interval like every tuner: the run's own check."""
    with pytest.raises(ValueError, match="ready_interval"):
        comparison.CompareConfig(trials=2, ready_interval=3).validate()


def test_plan_has_one_directory_per_arm_and_seed_in_order():
    config = comparison.CompareConfig(out="o", arms=("pb2:4", "pbt:8"), pairs=(), seeds=(0, 5))
    entries = comparison.plan(config)
    assert [e["dir"] for e in entries] == [
        "o/pb2-p4/seed0", "o/pb2-p4/seed5", "o/pbt-p8/seed0", "o/pbt-p8/seed5"
    ]
    assert [(e["settings"]["tuner"], e["settings"]["population"]) for e in entries] == [
        ("pb2", 4), ("pb2", 4), ("pbt", 8), ("pbt", 8)
    ]


def test_pairs_read_the_interval_the_right_way_round():
    arms = {
        "pb2:4": _arm([150.0, 160.0, 155.0], [140.0, 150.0, 145.0]),
        "pbt:8": _arm([10.0, 20.0, 15.0], [5.0, 6.0, 7.0]),
        "pbt:4": _arm([140.0, 170.0, 150.0]),
    }
    pairs = ("pb2:4/pbt:8", "pbt:8/pb2:4", "pb2:4/pbt:4")
    result = report.summarise(arms, pairs, confidence=0.95, resamples=500)
    readings = [p["reading"] for p in result["pairs"]]
    assert readings == ["pb2:4 higher", "pb2:4 higher", "no difference shown"]
    first = result["pairs"][0]["difference"]
    assert first["mean"] == pytest.approx(140.0) and 0 < first["low"] <= 140 <= first["high"]
    assert result["arms"]["pb2:4"]["best_ci"]["mean"] == pytest.approx(155.0)
    assert result["arms"]["pbt:4"]["population_mean_ci"]["n"] == 0
    settings = dict(
        comparison.CompareConfig().__dict__, env="cartpole", pairs=pairs, seeds=(0, 1, 2)
    )
    markdown = report.to_markdown(result, settings)
    assert "| pb2:4 | 150.0, 160.0, 155.0 | 155.0 [" in markdown
    assert "| pb2:4 - pbt:4 | " in markdown and "no difference shown" in markdown
