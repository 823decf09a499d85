"""Tests of the PETS probabilistic ensemble (jaxmbrl.models)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from compiles import count_compiles

from jaxmbrl import models
from jaxmbrl.models import ensemble as ensemble_lib
from jaxmbrl.models import network

CFG = models.EnsembleConfig(
    input_size=1,
    output_size=1,
    ensemble_size=3,
    num_elites=2,
    max_hidden_width=32,
    max_hidden_layers=3,
    max_epochs=20,
    batch_size=32,
    tunable_architecture=True,  # most tests tune width/depth; STATIC_CFG does not
)
STATIC_CFG = dataclasses.replace(CFG, tunable_architecture=False, max_hidden_width=16)
CAPACITY = 1024


def hparams(cfg=CFG, **kw):
    hp = models.default_model_hparams(cfg)
    dtypes = {f: getattr(hp, f).dtype for f in hp._fields}
    return hp._replace(**{k: jnp.asarray(v, dtypes[k]) for k, v in kw.items()})


def noise_std(x):
    return 0.15 + 0.1 * x / 3.0  # 0.05 at x=-3 .. 0.25 at x=3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3.0, 3.0, (CAPACITY, 1)).astype(np.float32)
    y = (np.sin(x) + noise_std(x) * rng.normal(size=x.shape)).astype(np.float32)
    return x, y


@pytest.fixture(scope="module")
def ens():
    ensemble = models.make_ensemble(CFG)
    traces = []

    def counted_train(*args):
        traces.append(1)  # runs once per trace (compilation), not per call
        return ensemble.train(*args)

    return dict(
        ensemble=ensemble,
        init=jax.jit(ensemble.init),
        train=jax.jit(counted_train),
        predict=jax.jit(ensemble.predict),
        traces=traces,
    )


def test_heteroscedastic_toy_nll_falls_and_std_tracks_noise(ens, data):
    x, y = data
    hp = hparams(learning_rate=3e-3, epochs=20)
    state = ens["init"](jax.random.key(0), hp)
    state, m0 = ens["train"](jax.random.key(1), state, x, y, 1000, hparams(epochs=0))
    assert int(m0["steps"]) == 0
    for i in range(2):
        state, m = ens["train"](jax.random.key(2 + i), state, x, y, 1000, hp)
        if i == 0:
            assert m["train_nll"] < m["train_nll_first_epoch"] - 0.5
    assert int(m["nonfinite"]) == 0
    assert int(m["steps"]) == 20 * int(np.ceil(int(m["num_train"]) / CFG.batch_size))
    assert m["val_nll"] < m0["val_nll"] - 1.0
    assert m["val_mse"] < 0.08  # noise variance alone averages ~0.025

    grid = np.linspace(-2.5, 2.5, 21, dtype=np.float32)[:, None]
    mean, logvar = ens["predict"](state, jnp.broadcast_to(grid, (CFG.num_elites, 21, 1)))
    pred_std = np.exp(0.5 * np.asarray(logvar)).mean(axis=0)
    ratio = pred_std / noise_std(grid)
    # Tolerance: predicted std within 35% of the true noise std everywhere on the grid,
    # and within 15% on average; the mean within 0.15 of sin(x).
    assert np.all((ratio > 0.65) & (ratio < 1.35)), ratio.ravel()
    assert abs(np.mean(ratio) - 1.0) < 0.15, np.mean(ratio)
    assert np.max(np.abs(np.asarray(mean).mean(axis=0) - np.sin(grid))) < 0.15


def slice_params(params, width, layers):
    return {
        "w_in": params["w_in"][:, :, :width],
        "b_in": params["b_in"][:, :, :width],
        "w_hid": params["w_hid"][: layers - 1, :, :width, :width],
        "b_hid": params["b_hid"][: layers - 1, :, :, :width],
        "w_out": params["w_out"][:, :width],
        "b_out": params["b_out"],
        "max_logvar": params["max_logvar"],
        "min_logvar": params["min_logvar"],
    }


def test_padded_predict_equals_unpadded_for_every_activation():
    width, layers = 5, 2
    padded_cfg = dataclasses.replace(CFG, max_hidden_width=16, max_hidden_layers=4, activation=None)
    padded = models.make_ensemble(padded_cfg)
    padded_init, padded_predict = jax.jit(padded.init), jax.jit(padded.predict)
    x = jax.random.normal(jax.random.key(3), (CFG.ensemble_size, 7, 1))
    for act, name in enumerate(models.ACTIVATIONS):
        hp = hparams(padded_cfg, hidden_width=width, hidden_layers=layers, activation=act)
        state = padded_init(jax.random.key(act), hp)
        # Nonzero biases so the masked units would show if they leaked (sigmoid(0) = 0.5).
        state = state._replace(
            params={**state.params, "b_in": state.params["b_in"] + 0.3},
            input_mean=jnp.array([0.2]),
            input_std=jnp.array([1.7]),
        )
        small_cfg = dataclasses.replace(
            CFG, max_hidden_width=width, max_hidden_layers=layers, activation=name
        )
        small = models.make_ensemble(small_cfg)
        small_state = jax.jit(small.init)(jax.random.key(9), hparams(small_cfg))._replace(
            params=slice_params(state.params, width, layers),
            input_mean=state.input_mean,
            input_std=state.input_std,
        )
        got_want = zip(
            padded_predict(state, x), jax.jit(small.predict)(small_state, x), strict=True
        )
        for got, want in got_want:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_padded_training_equals_unpadded(data, optimizer):
    """Masked weight decay and masked units: the active weights train exactly as unpadded."""
    x, y = data
    width, layers = 6, 2
    big_cfg = dataclasses.replace(
        CFG, max_hidden_width=10, max_hidden_layers=3, optimizer=optimizer
    )
    small_cfg = dataclasses.replace(big_cfg, max_hidden_width=width, max_hidden_layers=layers)
    big, small = models.make_ensemble(big_cfg), models.make_ensemble(small_cfg)
    kw = dict(learning_rate=1e-2, weight_decay=1e-2, epochs=2)
    hp_big = hparams(big_cfg, hidden_width=width, hidden_layers=layers, **kw)
    state = jax.jit(big.init)(jax.random.key(0), hp_big)
    small_state = jax.jit(small.init)(jax.random.key(1), hparams(small_cfg))
    small_state = small_state._replace(params=slice_params(state.params, width, layers))
    state, m_big = jax.jit(big.train)(jax.random.key(2), state, x, y, 300, hp_big)
    small_state, m_small = jax.jit(small.train)(
        jax.random.key(2), small_state, x, y, 300, hparams(small_cfg, **kw)
    )
    assert int(m_big["steps"]) > 0
    np.testing.assert_allclose(m_big["train_nll"], m_small["train_nll"], rtol=1e-4)
    got = slice_params(state.params, width, layers)
    for name, want in small_state.params.items():
        np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_array_equal(state.elites, small_state.elites)


def test_vmap_over_hparams_matches_separate_runs_and_isolates_nan(ens, data):
    x, y = data
    members = [
        hparams(learning_rate=1e-3, epochs=3),
        hparams(learning_rate=5e-3, epochs=5, hidden_width=16, hidden_layers=2),
        hparams(learning_rate=1e35, epochs=4, hidden_width=8),  # diverges
    ]
    stacked = jax.tree.map(lambda *v: jnp.stack(v), *members)
    keys = jax.random.split(jax.random.key(7), 3)
    init_keys, train_keys = keys, jax.random.split(jax.random.key(8), 3)
    states = jax.jit(jax.vmap(ens["ensemble"].init))(init_keys, stacked)
    train_v = jax.jit(jax.vmap(ens["ensemble"].train, in_axes=(0, 0, None, None, None, 0)))
    states, metrics = train_v(train_keys, states, x, y, 200, stacked)
    np.testing.assert_array_equal(metrics["nonfinite"], [0, 0, 1])
    for i, hp in enumerate(members):
        state = ens["init"](init_keys[i], hp)
        state, m = ens["train"](train_keys[i], state, x, y, 200, hp)
        assert int(m["nonfinite"]) == int(metrics["nonfinite"][i])
        assert int(m["steps"]) == int(metrics["steps"][i])
        if i == 2:
            continue
        for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(states.params), strict=True):
            np.testing.assert_allclose(a, b[i], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(m["val_mse"], metrics["val_mse"][i], rtol=1e-4)
    # The diverged member predicts non-finite values without raising; the others stay finite.
    inputs = jnp.zeros((3, CFG.num_elites, 4, 1))
    mean, _ = jax.vmap(ens["predict"])(states, inputs)
    assert np.all(np.isfinite(mean[:2])) and not np.all(np.isfinite(mean[2]))


def test_no_recompilation_when_hparams_or_data_size_change(ens, data):
    x, y = data
    state = ens["init"](jax.random.key(0), hparams())
    calls = [
        (hparams(learning_rate=1e-3, epochs=1), 100),
        (hparams(learning_rate=2e-2, weight_decay=1e-3, epochs=2, hidden_width=7), 500),
        (hparams(epochs=1, hidden_layers=1), 1024),
    ]
    state, _ = ens["train"](jax.random.key(1), state, x, y, 50, hparams(epochs=1))
    traces = len(ens["traces"])
    with count_compiles() as compiled:
        for i, (hp, n) in enumerate(calls):
            state, m = ens["train"](jax.random.key(i), state, x, y, n, hp)
            assert int(m["num_train"]) + int(m["num_val"]) == n
    assert len(ens["traces"]) == traces
    assert compiled.count(ens["train"]) == 0


def test_rows_beyond_num_valid_are_ignored(ens, data):
    x, y = data
    x_bad = x.copy()
    x_bad[300:] = np.nan
    hp = hparams(epochs=2)
    state = ens["init"](jax.random.key(0), hp)
    state_a, m_a = ens["train"](jax.random.key(1), state, x, y, 300, hp)
    state_b, m_b = ens["train"](jax.random.key(1), state, x_bad, y, 300, hp)
    assert int(m_b["nonfinite"]) == 0
    np.testing.assert_allclose(state_a.input_mean, np.mean(x[:300], axis=0), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(state_a.params), jax.tree.leaves(state_b.params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_elites_are_chosen_by_validation_error(ens, data):
    x, y = data
    hp = hparams()
    state = ens["init"](jax.random.key(0), hp)
    sabotaged = state.params["b_out"].at[1, :, 0].add(10.0)  # member 1's mean is off by 10
    state = state._replace(params={**state.params, "b_out": sabotaged})
    state, m = ens["train"](jax.random.key(1), state, x, y, 800, hparams(epochs=0))
    assert 1 not in np.asarray(state.elites)
    assert int(np.argmax(state.val_mse)) == 1
    # Elites are ordered best first and predict(K == num_elites) uses exactly them.
    assert state.val_mse[state.elites[0]] <= state.val_mse[state.elites[1]]
    inputs = jnp.broadcast_to(x[:5], (CFG.ensemble_size, 5, 1))
    full_mean, _ = ens["predict"](state, inputs)
    elite_mean, _ = ens["predict"](state, inputs[: CFG.num_elites])
    np.testing.assert_allclose(elite_mean, full_mean[np.asarray(state.elites)], rtol=1e-6)


def test_split_rows_is_stable_as_buffer_grows():
    train_small, val_small = models.split_rows(500, 0.1)
    train_big, val_big = models.split_rows(5000, 0.1)
    np.testing.assert_array_equal(val_big[val_big < 500], val_small)
    np.testing.assert_array_equal(train_big[train_big < 500], train_small)
    assert abs(len(val_big) / 5000 - 0.1) < 0.005
    assert len(np.intersect1d(train_big, val_big)) == 0


def test_forward_flops_hand_computed():
    cfg = models.EnsembleConfig(input_size=24, output_size=18, tunable_architecture=True)
    full = 2 * (24 * 200 + 3 * 200 * 200 + 200 * 36)
    assert models.forward_flops(cfg) == full == 264_000
    assert models.forward_flops(cfg, (200, 200, 200, 200)) == full
    hp = hparams(cfg, hidden_width=100, hidden_layers=2)
    assert models.forward_flops(cfg, hp) == 2 * (24 * 100 + 100 * 100 + 100 * 36) == 32_000
    assert models.forward_flops(cfg, [100, 100]) == 32_000
    # A static architecture ignores the width/depth hyperparameters: always full size.
    assert models.forward_flops(dataclasses.replace(cfg, tunable_architecture=False), hp) == full


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(activation="gelu"), "activation"),
        (dict(num_elites=4), "num_elites"),
        (dict(optimizer="sgd"), "optimizer"),
        (dict(layer_decay_scales=(1.0, 1.0)), "layer_decay_scales"),
        (dict(validation_ratio=1.0), "validation_ratio"),
        (dict(tunable_architecture=None), "tunable_architecture"),
        (dict(forward_dtype="float16"), "forward_dtype='float16'; valid: float32, bfloat16"),
    ],
)
def test_bad_config_raises(change, match):
    with pytest.raises(ValueError, match=match):
        models.make_ensemble(dataclasses.replace(CFG, **change))


def test_predict_rejects_wrong_member_count(ens):
    state = ens["init"](jax.random.key(0), hparams())
    with pytest.raises(ValueError, match="ensemble_size"):
        ens["ensemble"].predict(state, jnp.zeros((4, 2, 1)))


def test_pets_decay_scales_match_paper():
    wd = 7.5e-5
    got = np.asarray(ensemble_lib.PETS_CHEETAH_DECAY_SCALES) * wd
    np.testing.assert_allclose(got, [2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4], rtol=1e-6)


def test_init_std_uses_active_fan_in(ens):
    """PETS init: truncated normal (+-2 std), std 1/(2 sqrt(fan_in)) with the traced width."""
    width = 8
    params = ens["init"](jax.random.key(0), hparams(hidden_width=width)).params
    trunc = 0.8796  # std of a standard normal truncated at +-2
    hid = np.asarray(params["w_hid"][:, :, :width, :width])  # 2 x 3 x 8 x 8 = 384 samples
    out = np.asarray(params["w_out"][:, :width])
    for w in (hid, out):
        assert abs(w.std() / (trunc / (2 * np.sqrt(width))) - 1.0) < 0.15
        assert np.abs(w).max() <= 2.0 / (2 * np.sqrt(width)) + 1e-6
    np.testing.assert_array_equal(params["b_in"], 0.0)
    np.testing.assert_allclose(params["max_logvar"], 0.5)
    np.testing.assert_allclose(params["min_logvar"], -10.0)


def test_soft_clamp_equals_softplus_form_in_value_and_gradient():
    def reference(lv, hi, lo):  # PETS' formulation
        lv = hi - jax.nn.softplus(hi - lv)
        return lo + jax.nn.softplus(lv - lo)

    lv = jnp.linspace(-40.0, 40.0, 161)[:, None]
    hi, lo = jnp.array([[0.5, 2.0, -3.0]]), jnp.array([[-10.0, -1.0, -20.0]])
    np.testing.assert_allclose(
        network.soft_clamp_logvar(lv, hi, lo), reference(lv, hi, lo), rtol=1e-5, atol=1e-5
    )
    loss = lambda f: lambda *a: jnp.sum(jnp.sin(f(*a)))  # non-uniform cotangents
    got = jax.grad(loss(network.soft_clamp_logvar), argnums=(0, 1, 2))(lv, hi, lo)
    want = jax.grad(loss(reference), argnums=(0, 1, 2))(lv, hi, lo)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    edge = network.soft_clamp_logvar(jnp.array([-jnp.inf, -200.0, jnp.inf, jnp.nan]), 0.5, -10.0)
    want = reference(jnp.array([-1e9, -200.0, 1e9]), 0.5, -10.0)
    np.testing.assert_allclose(edge[:3], want, rtol=1e-6)
    assert np.isnan(edge[3])
    # The planner's std path is exp(clamped logvar / 2), without the log.
    np.testing.assert_allclose(
        network.soft_clamp_std(lv, hi, lo), jnp.exp(0.5 * reference(lv, hi, lo)), rtol=1e-5
    )


def test_static_architecture_equals_full_tunable_one_and_ignores_width_depth(data):
    """The mask-free program computes what the padded one computes at full size."""
    x, y = data
    tunable_cfg = dataclasses.replace(STATIC_CFG, tunable_architecture=True)
    static, tunable = models.make_ensemble(STATIC_CFG), models.make_ensemble(tunable_cfg)
    kw = dict(learning_rate=1e-2, weight_decay=1e-2, epochs=1)
    full = hparams(tunable_cfg, **kw)
    # Width/depth hyperparameters other than the maxima are ignored by a static model.
    odd = hparams(STATIC_CFG, hidden_width=3, hidden_layers=1, **kw)
    state_s = jax.jit(static.init)(jax.random.key(0), odd)
    state_t = jax.jit(tunable.init)(jax.random.key(0), full)
    assert int(state_s.hidden_width) == 16 and int(state_s.hidden_layers) == CFG.max_hidden_layers
    state_s, m_s = jax.jit(static.train)(jax.random.key(2), state_s, x, y, 300, odd)
    state_t, m_t = jax.jit(tunable.train)(jax.random.key(2), state_t, x, y, 300, full)
    np.testing.assert_allclose(m_s["train_nll"], m_t["train_nll"], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(state_s.params), jax.tree.leaves(state_t.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # predict folds the normaliser into the first layer: same as normalising the rows.
    state_s = state_s._replace(input_mean=jnp.array([0.4]), input_std=jnp.array([2.5]))
    inputs = jax.random.normal(jax.random.key(3), (CFG.num_elites, 9, 1)) * 3.0
    mean, logvar = jax.jit(static.predict)(state_s, inputs)
    module = network.EnsembleMLP(
        ensemble_size=CFG.num_elites,
        input_size=1,
        output_size=1,
        max_hidden_width=16,
        max_hidden_layers=CFG.max_hidden_layers,
    )
    params = network.gather_members(state_s.params, state_s.elites)
    want = module.apply({"params": params}, (inputs - 0.4) / 2.5, 16, CFG.max_hidden_layers)
    np.testing.assert_allclose(mean, want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logvar, want[1], rtol=1e-5, atol=1e-6)
    mean_std, std = jax.jit(static.predict, static_argnames="std")(state_s, inputs, std=True)
    np.testing.assert_array_equal(mean_std, mean)
    np.testing.assert_allclose(std, np.exp(0.5 * np.asarray(logvar)), rtol=1e-5)


def test_bfloat16_forward_is_close_and_leaves_training_in_float32(data):
    """forward_dtype="bfloat16" rounds predict's matmul operands (8-bit mantissa, float32
    accumulation): close to float32, not equal; training is the float32 program."""
    x, y = data
    f32 = models.make_ensemble(STATIC_CFG)
    bf16 = models.make_ensemble(dataclasses.replace(STATIC_CFG, forward_dtype="bfloat16"))
    hp = hparams(STATIC_CFG, learning_rate=1e-2, epochs=2)
    state = jax.jit(f32.init)(jax.random.key(0), hp)
    trained = [jax.jit(e.train)(jax.random.key(1), state, x, y, 300, hp) for e in (f32, bf16)]
    for a, b in zip(*(jax.tree.leaves(t) for t in trained), strict=True):
        np.testing.assert_array_equal(a, b)
    state = trained[0][0]
    grid = jnp.linspace(-3.0, 3.0, 64).reshape(1, 64, 1)
    inputs = jnp.tile(grid, (STATIC_CFG.ensemble_size, 1, 1))
    (m32, lv32), (m16, lv16) = (jax.jit(e.predict)(state, inputs) for e in (f32, bf16))
    assert not np.array_equal(m16, m32)
    # bfloat16 keeps ~3 significant digits per operand; 3 layers of 16 units: 2% of the scale.
    np.testing.assert_allclose(m16, m32, atol=0.02 * float(jnp.abs(m32).max()))
    np.testing.assert_allclose(lv16, lv32, atol=0.02 * float(jnp.abs(lv32).max()))
