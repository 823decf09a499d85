"""The report's verdicts on the findings of Zhang et al. (AISTATS 2021), on constructed data
where the answer is known (no JAX program is compiled)."""

import numpy as np
import pytest

from jaxmbrl.analysis import study as analysis
from jaxmbrl.analysis import study_verdicts as v

SEEDS = [0, 1, 2, 3, 4]


def _tuner(returns):
    return dict(seeds=SEEDS, best_final_return=list(returns))


def _study(tuned_gain, dynamic_gain, static_transfer, dynamic_transfer, pairs, broke):
    """A study dict as `analysis.analyse` writes it, with the effects given."""
    # Seed-to-seed noise of mean 0 that spans +-1: a zero effect has an interval across 0.
    default = 20 + np.array([0.3, -0.2, 0.1, 0.0, -0.2])
    static = default + tuned_gain + np.array([1.0, -1.0, 0.5, -0.5, 0.0])
    dynamic = static + dynamic_gain + np.array([-0.5, 0.5, 1.0, -1.0, 0.0])
    ci = lambda x: analysis.bootstrap_ci(list(x), 0.95, 999)  # noqa: E731
    # Each replay's gain over the default on new seeds (return points); its share of a
    # near-zero tuning gain (survival) is huge and must not decide the verdict.
    transfer = [
        dict(kind=kind, gain_new=g, survival=g / 0.01)
        for kind, values in (("static", static_transfer), ("dynamic", dynamic_transfer))
        for g in values
    ]
    tuned_broke, default_broke = broke
    counts = {
        "cartpole/tune/pbt": dict(
            members=40, broke=tuned_broke, diverged_trials=tuned_broke, runs=5
        ),
        "cartpole/tune/default": dict(
            members=40, broke=default_broke, diverged_trials=default_broke, runs=5
        ),
    }
    rows = [
        dict(tuner="pbt", seed=0, member=m, trial=3, dir="/out/cartpole/pbt/seed0")
        for m in range(tuned_broke)
    ]
    env = dict(
        tuners=dict(
            default=_tuner(default),
            random_search=_tuner(static),
            hyperband=_tuner(static),
            pbt=_tuner(dynamic),
            pbt_bt=_tuner(dynamic),
        ),
        static_vs_dynamic=dict(dynamic_minus_static_ci=ci(dynamic - static)),
        spearman=dict(random_search=dict(pairs=pairs)),
    )
    return dict(
        envs=dict(cartpole=env),
        transfer=transfer,
        divergences=dict(counts=counts, rows=rows, total=len(rows)),
    )


def _pair(cor, n, lo=1, hi=3):
    return dict(budget_low=lo, budget_high=hi, cor=cor, p=0.01, n=n)


def _verdicts(study):
    rows = v.verdict_table(study, resamples=999, root="/out")
    assert [r["finding"] for r in rows] == list(v.FINDINGS)  # one row per finding, one env
    assert all(r["paper"] == v.PAPER[r["finding"]] for r in rows)
    return {r["finding"]: r for r in rows}


def test_every_finding_supported_when_the_data_show_it():
    study = _study(
        10.0, 10.0, [9.0, 10.0, 9.5, 9.7], [1.0, 3.0, 2.0, 1.5], [_pair(0.0, 40)], (12, 0)
    )
    rows = _verdicts(study)
    assert {k: r["verdict"] for k, r in rows.items()} == dict.fromkeys(v.FINDINGS, v.SUPPORTED)
    # The divergence row counts the broken members and links their records from the report.
    assert "tuned 12 of 40, default 0 of 40" in rows["divergence"]["measured"]
    assert "(cartpole/pbt/seed0/members.jsonl)" in rows["divergence"]["measured"]


def test_every_finding_not_supported_when_the_data_show_the_opposite():
    study = _study(
        -10.0, -10.0, [1.0, 3.0, 2.0, 1.5], [9.0, 10.0, 9.5, 9.7], [_pair(0.95, 40)], (3, 3)
    )
    rows = _verdicts(study)
    assert {k: r["verdict"] for k, r in rows.items()} == dict.fromkeys(v.FINDINGS, v.NOT_SUPPORTED)


def test_no_effect_or_too_little_data_is_inconclusive():
    study = _study(
        0.0, 0.0, [-0.5, 0.6, -12.0, 0.2], [0.3, -0.4, 0.1, -2.0], [_pair(0.3, 6)], (0, 0)
    )
    rows = _verdicts(study)
    assert {k: r["verdict"] for k, r in rows.items()} == dict.fromkeys(v.FINDINGS, v.INCONCLUSIVE)
    assert "spans 0" in rows["tuned"]["reason"] and "spans 0" in rows["dynamic"]["reason"]
    assert ">= 10 configurations (most: 6)" in rows["spearman"]["reason"]
    assert "no tuned member broke" in rows["divergence"]["reason"]


def test_interval_verdicts():
    ci = lambda mean, low, high, n=5: dict(mean=mean, low=low, high=high, n=n)  # noqa: E731
    assert v.interval_verdict(ci(2.0, 0.5, 3.0), "x")[0] == v.SUPPORTED
    assert v.interval_verdict(ci(-2.0, -3.0, -0.5), "x")[0] == v.NOT_SUPPORTED
    assert v.interval_verdict(ci(0.1, -1.0, 1.0), "x")[0] == v.INCONCLUSIVE
    assert v.interval_verdict(ci(5.0, None, None, 1), "x")[0] == v.INCONCLUSIVE


@pytest.mark.parametrize(
    "pairs,verdict",
    [
        ([_pair(-0.4, 30), _pair(0.1, 30, 3, 9)], v.SUPPORTED),  # weak/negative at every pair
        ([_pair(0.9, 30), _pair(0.1, 30, 3, 9)], v.NOT_SUPPORTED),  # half strong
        ([_pair(0.45, 30), _pair(0.55, 30, 3, 9)], v.INCONCLUSIVE),  # intervals straddle 0.5
        ([_pair(None, 2)], v.INCONCLUSIVE),
    ],
)
def test_spearman_verdicts(pairs, verdict):
    assert v.spearman_verdict(pairs)[0] == verdict


def test_rho_interval_narrows_with_n_and_contains_rho():
    wide, narrow = v.rho_interval(0.3, 10), v.rho_interval(0.3, 200)
    assert wide[0] < narrow[0] < 0.3 < narrow[1] < wide[1]


def test_divergence_verdicts():
    assert v.divergence_verdict(10, 40, 0, 40)[0] == v.SUPPORTED
    assert v.divergence_verdict(1, 40, 0, 40)[0] == v.INCONCLUSIVE  # p = 0.5
    assert v.divergence_verdict(2, 40, 4, 40)[0] == v.NOT_SUPPORTED
    assert v.divergence_verdict(0, 40, 0, 40)[0] == v.INCONCLUSIVE


def test_tuned_minus_default_pairs_seeds():
    tuners = dict(
        default=dict(seeds=[0, 1], best_final_return=[1.0, 2.0]),
        pbt=dict(seeds=[1, 0], best_final_return=[5.0, 3.0]),  # other seed order
        random_search=dict(seeds=[0], best_final_return=[4.0]),  # seed 1 missing
    )
    assert v.tuned_minus_default(tuners) == [2.5, 3.0]
