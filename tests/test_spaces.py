"""Search spaces: unit-cube round trips, bounds, log scale, integers, categoricals, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl.tuners import SPACE_NAMES, Categorical, Float, Int, SearchSpace, get_space


@pytest.fixture(scope="module")
def space():
    return get_space("all")


def test_round_trip_values_and_units(space):
    u = space.sample_unit(jax.random.key(0), 256)
    vals = space.from_unit(u)
    back = space.from_unit(space.to_unit(vals))
    for p in space.params:
        if isinstance(p, Float):
            np.testing.assert_allclose(back[p.name], vals[p.name], rtol=1e-5)
        else:
            np.testing.assert_array_equal(back[p.name], vals[p.name])
    # unit -> value -> unit stays in the same bin: continuous params come back (nearly) exactly
    u2 = space.to_unit(vals)
    for i, p in enumerate(space.params):
        if isinstance(p, Float):
            np.testing.assert_allclose(u2[:, i], u[:, i], atol=1e-5)


def test_defaults_match_the_study_table(space):
    d = space.to_dicts(space.default_unit(1))[0]
    expected = dict(
        num_hidden_layers=4,
        hidden_layer_width=200,
        activation="swish",
        model_learning_rate=1e-3,
        model_weight_decay=7.5e-5,
        model_train_epoch=5,
        num_cem_iters=5,
        cem_popsize=500,
        cem_alpha=0.1,
        cem_elites_ratio=0.1,
        plan_hor=30,
    )
    assert d.keys() == expected.keys()
    for k, v in expected.items():
        if isinstance(v, float):
            assert d[k] == pytest.approx(v, rel=1e-5), k
        else:
            assert d[k] == v, k


def test_values_stay_within_bounds_at_and_beyond_the_cube_edges(space):
    u = jnp.concatenate(
        [jnp.zeros((1, space.dim)), jnp.ones((1, space.dim)), jnp.full((1, space.dim), 1.7)]
    )
    u = jnp.concatenate(
        [u, jnp.full((1, space.dim), -0.3), space.sample_unit(jax.random.key(1), 64)]
    )
    vals = space.from_unit(u)
    for p in space.params:
        v = np.asarray(vals[p.name])
        if isinstance(p, Categorical):
            assert v.min() >= 0 and v.max() < len(p.choices)
        else:
            assert v.min() >= p.low and v.max() <= p.high, p.name
            assert v[0] == pytest.approx(p.low, rel=1e-5) and v[1] == pytest.approx(
                p.high, rel=1e-5
            )


def test_log_scale_midpoint_is_geometric_mean():
    s = SearchSpace((Float("lr", 1e-5, 1e-1, log=True), Float("x", 2.0, 4.0)))
    v = s.from_unit(jnp.array([0.5, 0.5]))
    assert float(v["lr"]) == pytest.approx(math.sqrt(1e-5 * 1e-1), rel=1e-5)
    assert float(v["x"]) == pytest.approx(3.0)
    # equal steps in u are equal ratios in value
    lr = np.asarray(s.from_unit(jnp.array([[0.25, 0.0], [0.5, 0.0], [0.75, 0.0]]))["lr"])
    assert lr[1] / lr[0] == pytest.approx(lr[2] / lr[1], rel=1e-4)


def test_int_rounding_gives_every_integer_an_equal_bin():
    p = Int("k", 3, 8)
    s = SearchSpace((p,))
    u = (jnp.arange(6000) + 0.5) / 6000
    k = np.asarray(s.from_unit(u[:, None])["k"])
    assert k.dtype == np.int32
    values, counts = np.unique(k, return_counts=True)
    np.testing.assert_array_equal(values, np.arange(3, 9))
    np.testing.assert_array_equal(counts, np.full(6, 1000))


def test_log_int_covers_its_range_and_round_trips():
    s = SearchSpace((Int("pop", 200, 700, log=True),))
    ints = jnp.arange(200, 701)
    back = s.from_unit(s.to_unit({"pop": ints}))["pop"]
    np.testing.assert_array_equal(back, ints)
    low_half = np.asarray(s.from_unit(jnp.array([[0.5]]))["pop"])[0]
    assert 370 <= low_half <= 376  # geometric middle of [199.5, 700.5]


def test_categorical_index_bins_and_names():
    c = Categorical("act", ("relu", "tanh", "sigmoid", "swish"), default="swish")
    s = SearchSpace((c,))
    idx = s.from_unit(jnp.array([[0.0], [0.26], [0.6], [0.999], [1.0]]))["act"]
    np.testing.assert_array_equal(idx, [0, 1, 2, 3, 3])
    assert idx.dtype == jnp.int32
    u = s.to_unit({"act": "tanh"})
    assert int(s.from_unit(u)["act"]) == 1
    assert s.to_dicts(s.default_unit(2)) == [{"act": "swish"}, {"act": "swish"}]


def test_from_unit_is_jittable(space):
    f = jax.jit(space.from_unit)
    u = space.sample_unit(jax.random.key(2), 4)
    out = f(u)
    for k, v in space.from_unit(u).items():
        np.testing.assert_allclose(out[k], v, rtol=1e-6)  # XLA may fuse exp/log differently
    assert out["plan_hor"].dtype == jnp.int32 and out["cem_alpha"].dtype == jnp.float32


def test_groups_and_env_specific_horizon():
    assert get_space("model").names == (
        "model_learning_rate",
        "model_weight_decay",
        "model_train_epoch",
    )
    assert get_space("planning").names == (
        "num_cem_iters",
        "cem_popsize",
        "cem_alpha",
        "cem_elites_ratio",
        "plan_hor",
    )
    assert get_space("static").names == ("num_hidden_layers", "hidden_layer_width", "activation")
    assert get_space("all").dim == 11
    assert get_space("planning")["plan_hor"].high == 60
    assert get_space("planning", env="pusher")["plan_hor"].high == 40
    assert get_space("planning")["cem_popsize"].log


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Float("lr", 1.0, 0.5), ["lr", "low=1.0", "high=0.5"]),
        (lambda: Float("lr", 0.0, 1.0, log=True), ["lr", "low=0.0", "low > 0"]),
        (lambda: Float("x", 0.0, 1.0, default=2.0), ["default=2.0", "[0.0, 1.0]"]),
        (lambda: Int("k", 5, 3), ["k", "low=5", "high=3"]),
        (lambda: Int("k", 1, 3, default=2.5), ["default=2.5", "integer"]),
        (lambda: Int("k", 0, 3, log=True), ["log", "low=0"]),
        (lambda: Categorical("a", ()), ["a", "non-empty"]),
        (lambda: Categorical("a", ("x", "y"), default="z"), ["'z'", "('x', 'y')"]),
        (lambda: SearchSpace((Float("a", 0, 1), Float("a", 0, 1))), ["duplicate"]),
        (lambda: get_space("dynamics"), ["'dynamics'", *SPACE_NAMES]),
    ],
)
def test_invalid_input_raises_a_clear_error(make, words):
    with pytest.raises(ValueError) as err:
        make()
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_missing_value_in_to_unit_is_an_error():
    s = SearchSpace((Float("a", 0, 1), Float("b", 0, 1)))
    with pytest.raises(ValueError, match="'b'"):
        s.to_unit({"a": 0.5})


def test_perturb_multiplies_by_a_factor_and_clips():
    s = SearchSpace(tuple(Float(f"x{i}", 0, 1) for i in range(4)))
    u = jax.random.uniform(jax.random.key(3), (500, 4))
    out = jax.jit(s.perturb, static_argnums=2)(jax.random.key(4), u, (0.8, 1.2), 0.0)
    lo, hi = jnp.clip(0.8 * u, 0, 1), jnp.clip(1.2 * u, 0, 1)
    assert bool(jnp.all(jnp.isclose(out, lo) | jnp.isclose(out, hi)))
    frac_up = float(jnp.mean(jnp.isclose(out, hi) & ~jnp.isclose(lo, hi)))
    assert 0.35 < frac_up < 0.65  # random sign, about half each way
    assert float(out.max()) <= 1.0


def test_resampling_whole_vectors_or_single_parameters():
    s = SearchSpace(tuple(Float(f"x{i}", 0, 1) for i in range(4)))
    u = jnp.full((400, 4), 0.5)
    perturbed = lambda out: jnp.isclose(out, 0.4) | jnp.isclose(out, 0.6)
    perturb = jax.jit(s.perturb, static_argnums=(2, 4))
    whole = perturbed(perturb(jax.random.key(5), u, (0.8, 1.2), 0.25, False))
    rows = jnp.all(whole, 1) | jnp.all(~whole, 1)
    assert bool(jnp.all(rows))  # a member is resampled completely or not at all
    assert 0.15 < float(jnp.mean(~whole[:, 0])) < 0.35
    each = perturbed(perturb(jax.random.key(5), u, (0.8, 1.2), 0.25, True))
    assert not bool(jnp.all(jnp.all(each, 1) | jnp.all(~each, 1)))
    assert 0.15 < float(jnp.mean(~each)) < 0.35
