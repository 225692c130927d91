"""Users' own models: Flax NNX, Equinox and plain functions against our MLP path and an explicit
``J Jᵀ`` (the reference: ``jax.jacrev`` of the stacked operator outputs, all parameters
flattened -- it shares nothing with the chunked contraction but autodiff itself)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import ntk_theory as nt
from ntk_theory.empirical import empirical_ntk
from ntk_theory.models import ModelError, analytic_counterpart, init_scales
from ntk_theory.operators import Operator

WIDTH = 12
X = np.linspace(-1.5, 1.5, 7)[:, None]
U_XX = Operator.parse("u_xx", ("x",))


class NNXNet(nnx.Module):
    def __init__(self, width: int, skip: bool = False, seed: int = 0):
        rngs = nnx.Rngs(seed)
        kw = {"param_dtype": jnp.float64, "rngs": rngs}
        self.l1 = nnx.Linear(1, width, **kw)
        self.l2 = nnx.Linear(width, width, **kw)
        self.l3 = nnx.Linear(width, 1, **kw)
        self.skip = skip

    def __call__(self, x):
        h = jnp.tanh(self.l1(x))
        h2 = jnp.tanh(self.l2(h))
        return self.l3(h2 + h if self.skip else h2)


def _nnx_layers(model):
    return [(m.kernel[...], m.bias[...]) for m in (model.l1, model.l2, model.l3)]


def _function_model(params, x):
    h = x
    for k, (W, b) in enumerate(params):
        h = h @ W + b
        if k < len(params) - 1:
            h = jnp.tanh(h)
    return h[0]


def _equinox_copy(layers):
    m = eqx.nn.MLP(1, 1, WIDTH, 2, activation=jnp.tanh, key=jax.random.PRNGKey(0))
    for k, (W, b) in enumerate(layers):
        m = eqx.tree_at(lambda t, k=k: (t.layers[k].weight, t.layers[k].bias), m, (W.T, b))
    return m


def _explicit_jjt(f, params, op, x):
    """``J Jᵀ`` with ``J = ∂/∂θ [(T f)(x_i)]_i`` materialized (the reference)."""
    coeffs = list(op.coefficient_values(np.asarray(x), {}).values())
    c = np.stack(coeffs, axis=1)

    def outputs(theta):
        return jax.vmap(lambda xi, ci: nt.operators.apply_at(op, lambda p: f(theta, p), xi, ci))(
            jnp.asarray(x), jnp.asarray(c)
        )

    J = jax.jacrev(outputs)(params)
    J = jnp.concatenate([j.reshape(len(x), -1) for j in jax.tree_util.tree_leaves(J)], axis=1)
    return np.asarray(J @ J.T)


def _rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b)))


@pytest.fixture(scope="module")
def model():
    return NNXNet(WIDTH)


@pytest.mark.parametrize("op", [None, U_XX], ids=["plain", "u_xx"])
def test_every_model_kind_gives_the_same_kernel(model, op):
    layers = _nnx_layers(model)
    ident = nt.operators.identity(("x0",))
    ref = _explicit_jjt(_function_model, layers, op or ident, X)
    net = analytic_counterpart(model, "tanh")
    mlp_params = [(W, b.reshape(1, -1)) for W, b in layers]
    mlp_params = [mlp_params[0], (), mlp_params[1], (), mlp_params[2]]
    kernels = {
        "nnx": empirical_ntk(model, X, T=op),
        "equinox": empirical_ntk(_equinox_copy(layers), X, T=op),
        "function": empirical_ntk(_function_model, X, T=op, params=layers, batch=3),
        "mlp": empirical_ntk(net, X, T=op, params=mlp_params),
    }
    for name, K in kernels.items():
        assert _rel(K, ref) < 1e-12, name
    # the chunked path with rows recomputed (a tiny memory budget) is the same contraction
    K = empirical_ntk(_function_model, X, T=op, params=layers, batch=2, memory_gb=1e-6)
    assert _rel(K, ref) < 1e-12


def test_cross_kernel_and_skip_connection_against_explicit_jjt():
    resnet = NNXNet(WIDTH, skip=True, seed=1)
    graphdef, params = nnx.split(resnet, nnx.Param)

    def f(p, x):
        return nnx.merge(graphdef, p)(x[None])[0, 0]

    ref = _explicit_jjt(f, params, U_XX, X)
    assert _rel(empirical_ntk(resnet, X, T=U_XX), ref) < 1e-12
    x2 = np.array([[0.3], [2.0]])
    K12 = empirical_ntk(resnet, X, x2, T=U_XX, S=nt.operators.identity(("x",)))
    J_both = _explicit_jjt(f, params, U_XX, np.vstack([X, x2]))  # sanity: symmetric reference
    assert np.allclose(J_both, J_both.T)
    full_T = empirical_ntk(resnet, np.vstack([X, x2]), T=U_XX)
    assert _rel(full_T, J_both) < 1e-12
    assert K12.shape == (7, 2)
    # a skip connection has no analytic counterpart: refused, never a silently different kernel
    with pytest.raises(ModelError, match="not a plain fully-connected"):
        analytic_counterpart(resnet, "tanh")


def test_multi_output_models(model):
    layers = _nnx_layers(model)

    def two(p, x):  # outputs (u, 2u + x0)
        u = _function_model(p, x)
        return jnp.stack([u, 2.0 * u + x[0]])

    K0 = empirical_ntk(_function_model, X, T=U_XX, params=layers)
    assert _rel(empirical_ntk(two, X, T=U_XX, params=layers, output=1), 4 * K0) < 1e-13
    sys_op = Operator.parse("u_xx + v_xx", ("x",), functions=("u", "v"))
    assert _rel(empirical_ntk(two, X, T=sys_op, params=layers), 9 * K0) < 1e-12
    with pytest.raises(ModelError, match="2 outputs per point; pass output"):
        empirical_ntk(two, X, T=U_XX, params=layers)


def test_analytic_counterpart_and_init_scales(model):
    net = analytic_counterpart(model, "tanh")
    assert (net.depth, net.W_std, net.b_std, net.parameterization) == (2, 1.0, 0.0, "standard")
    assert init_scales("he_normal", 8, 8) == pytest.approx(np.sqrt(2))
    assert init_scales("equinox", 8, 3) == pytest.approx(1 / np.sqrt(3))
    with pytest.raises(ModelError, match="glorot_normal has Var W"):
        init_scales("glorot_normal", 1, 64)
    with pytest.raises(ModelError, match="Unknown initializer"):
        init_scales("orthogonal", 8, 8)
    # Equinox draws biases per layer in ±1/√fan_in: no single b_std
    m = eqx.nn.MLP(1, 1, WIDTH, 2, activation=jnp.tanh, key=jax.random.PRNGKey(0))
    with pytest.raises(ModelError, match="non-zero biases"):
        analytic_counterpart(m, "tanh", init="equinox")
    with pytest.raises(ModelError, match="differ from MLP"):
        analytic_counterpart(model, "sin")


def test_bad_inputs(model):
    layers = _nnx_layers(model)
    net = nt.MLP(2, "tanh")
    # params of the wrong form for our MLP: a clear error, never a 0-d 0.0
    for bad in ({"w": jnp.ones(3)}, nnx.state(model, nnx.Param), [jnp.ones((1, 3))]):
        with pytest.raises(ValueError, match="params do not fit"):
            empirical_ntk(net, X, params=bad)
    with pytest.raises(ModelError, match="params do not fit the model"):
        empirical_ntk(model, X, params={"w": jnp.ones(3)})
    nan_layers = [(W * np.nan, b) for W, b in layers]
    with pytest.raises(ModelError, match="NaN"):
        empirical_ntk(_function_model, X, params=nan_layers)
    with pytest.raises(ModelError, match="needs params"):
        empirical_ntk(_function_model, X)
    with pytest.raises(ModelError, match="width= applies to an MLP only"):
        empirical_ntk(_function_model, X, params=layers, width=4)
    with pytest.raises(ModelError, match="must be an MLP, a function"):
        empirical_ntk(object(), X)
    with pytest.raises(ValueError, match="dimension|coordinates"):
        empirical_ntk(model, X, T=Operator.parse("u_xx + u_yy", ("x", "y")))
    with pytest.raises(ValueError, match="memory_gb"):
        empirical_ntk(model, X, memory_gb=0)


def test_tracker_in_a_users_optax_loop(tmp_path):
    """An NNX tanh PINN for 1-D Poisson trained with optax SGD in the user's loop. At step 0 the
    predicted loss pieces equal the actual ones and the drift is 0; the loss pieces match a
    direct evaluation of the residuals; after training the drift is positive and small (a
    width-64 network stays near its kernel regime); save/plot work."""
    import json

    import optax

    problem = nt.poisson_1d(12)
    model = NNXNet(64, seed=2)
    lr = 1e-3
    tracker = nt.NTKTracker(problem, model, learning_rate=lr)
    opt = nnx.Optimizer(model, optax.sgd(lr), wrt=nnx.Param)

    def loss_fn(m):
        def u(p):
            return m(p[None])[0, 0]

        r = jax.vmap(lambda p: _uxx(u, p))(jnp.asarray(problem.x_residual)) - problem.f
        b = jax.vmap(u)(jnp.asarray(problem.x_boundary[0])) - problem.g[0]
        return 0.5 * jnp.mean(r**2) + 0.5 * jnp.mean(b**2)

    step_fn = nnx.jit(lambda m, o: o.update(m, nnx.grad(loss_fn)(m)))
    first = tracker(0)
    assert first["drift"] == 0.0
    for label in first["losses"]:
        assert first["predicted_losses"][label] == pytest.approx(first["losses"][label], rel=1e-12)
    total = loss_fn(model)
    assert sum(first["losses"].values()) == pytest.approx(float(total), rel=1e-12)
    for step in range(1, 31):
        step_fn(model, opt)
        if step % 15 == 0:
            tracker(step)
    last = tracker.records[-1]
    assert 0 < last["drift"] < 0.5
    assert last["losses"]["residual"] < first["losses"]["residual"]
    saved = json.loads(tracker.save(tmp_path / "track.json").read_text())
    assert [r["step"] for r in saved["records"]] == [0, 15, 30]
    tracker.plot(tmp_path / "track.png")
    assert (tmp_path / "track.png").stat().st_size > 0


def _uxx(u, p):
    return jax.grad(lambda q: jax.grad(u)(q)[0])(p)[0]
