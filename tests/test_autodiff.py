"""hhjax.grad / hhjax.value_and_grad: forward or reverse mode, same gradients."""

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
import hhjax._autodiff

I_EXT = jnp.full(800, 10.0)  # 20 ms at 0.025 ms: one spike and its recovery


def _trace_loss(p, target):
    v = hhjax.simulate(p, I_EXT, 0.025, record="v").v
    return jnp.mean((v - target) ** 2)


def _params(g):
    return hhjax.HHParams(g_na=g[0], g_k=g[1], g_l=g[2])


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_gradient_matches_jax_grad_and_finite_differences(mode):
    target = hhjax.simulate(_params((110.0, 40.0, 0.25)), I_EXT, 0.025).v

    def loss(g):
        return _trace_loss(_params(g), target)

    g0 = jnp.array([120.0, 36.0, 0.3])
    value, grad = jax.jit(hhjax.value_and_grad(loss, mode=mode))(g0)
    np.testing.assert_allclose(value, loss(g0), rtol=1e-14)
    np.testing.assert_allclose(grad, jax.grad(loss)(g0), rtol=1e-10)
    eps = 1e-6 * np.asarray(g0)
    fd = [
        (loss(g0.at[k].add(eps[k])) - loss(g0.at[k].add(-eps[k]))) / (2 * eps[k])
        for k in range(3)
    ]
    np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_pytree_arguments_argnums_and_aux():
    def loss(p, scale):
        v = hhjax.simulate(p, I_EXT, 0.025, record="v").v
        return scale * jnp.mean((v + 60.0) ** 2), v[-1]

    p = hhjax.HHParams(g_na=jnp.asarray(120.0), g_k=jnp.asarray(36.0))
    scale = jnp.asarray(2.0)
    (v_ref, aux_ref), g_ref = jax.value_and_grad(loss, (0, 1), has_aux=True)(p, scale)
    (value, aux), (gp, gs) = hhjax.value_and_grad(
        loss, (0, 1), has_aux=True, mode="forward"
    )(p, scale)
    np.testing.assert_allclose(value, v_ref, rtol=1e-14)
    np.testing.assert_allclose(aux, aux_ref, rtol=1e-14)
    np.testing.assert_allclose(gs, g_ref[1], rtol=1e-10)
    for a, b in zip(gp, g_ref[0], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert isinstance(gp, hhjax.HHParams)
    g, aux2 = hhjax.grad(loss, has_aux=True)(p, scale)
    np.testing.assert_allclose(g.g_na, g_ref[0].g_na, rtol=1e-10)
    np.testing.assert_allclose(aux2, aux_ref, rtol=1e-14)


@jax.custom_vjp
def _reverse_only(x):
    return x


_reverse_only.defvjp(lambda x: (x, None), lambda _, g: (g,))


@pytest.mark.parametrize(
    "n, forward", [(1, True), (hhjax.FORWARD_MODE_MAX, True), (7, False)]
)
def test_auto_picks_forward_mode_for_few_inputs(n, forward):
    # A custom_vjp function cannot be differentiated in forward mode: whether
    # that fails tells which mode "auto" chose.
    def loss(x):
        return jnp.sum(_reverse_only(x) ** 2)

    grad = hhjax.grad(loss)
    x = jnp.arange(1.0, n + 1.0)
    if forward:
        with pytest.raises(TypeError, match="forward-mode"):
            grad(x)
    else:
        np.testing.assert_allclose(grad(x), 2 * x)


def test_clear_errors():
    with pytest.raises(ValueError, match="`mode` must be one of"):
        hhjax.grad(jnp.sum, mode="sideways")
    with pytest.raises(TypeError, match="`argnums` must be an int"):
        hhjax.grad(jnp.sum, argnums="0")
    with pytest.raises(TypeError, match="real scalar; got shape \\(2,\\)"):
        hhjax.grad(lambda x: 2 * x, mode="forward")(jnp.ones(2))
    with pytest.raises(TypeError, match="refers to positional argument 1"):
        hhjax.grad(lambda x, y: x * y, argnums=1)(1.0)
    with pytest.raises(TypeError, match="int"):  # JAX's own message
        hhjax.grad(lambda x: x * 1.0)(3)
    with pytest.raises(TypeError, match=r"must return \(value, aux\)"):
        hhjax.grad(lambda x: x**2, has_aux=True)(1.0)


def test_docstring_example_runs():
    result = doctest.testmod(hhjax._autodiff)
    assert result.attempted > 0 and result.failed == 0


def test_dtypes_match_jax():
    target = np.linspace(-70.0, -60.0, 800)  # float64

    def loss(g, scale):
        v = hhjax.simulate(hhjax.HHParams(g_na=g), I_EXT.astype(g.dtype), 0.025).v
        return scale * jnp.mean((v - target) ** 2)

    g32 = jnp.asarray(120.0, jnp.float32)
    for args in [(g32, 1.0), (g32, jnp.float64(1.0)), (jnp.float64(120.0), g32)]:
        want_value, want = jax.value_and_grad(loss, (0, 1))(*args)
        value, got = hhjax.value_and_grad(loss, (0, 1), mode="forward")(*args)
        assert value.dtype == want_value.dtype
        np.testing.assert_allclose(value, want_value, rtol=1e-6)
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=1e-4)


def test_auto_counts_every_differentiated_scalar():
    def loss(x, y):
        return jnp.sum(_reverse_only(x) ** 2) + jnp.sum(y**2)

    x3 = jnp.ones(3)
    with pytest.raises(TypeError, match="forward-mode"):  # 3 + 3 = 6 scalars
        hhjax.grad(loss, (0, 1))(x3, jnp.ones(3))
    gx, gy = hhjax.grad(loss, (0, 1))(x3, jnp.ones(4))  # 3 + 4 = 7: reverse
    np.testing.assert_allclose(gx, 2 * x3)
    np.testing.assert_allclose(gy, 2 * jnp.ones(4))
    # only the differentiated argument counts
    with pytest.raises(TypeError, match="forward-mode"):
        hhjax.grad(loss)(x3, jnp.ones(100))


def test_argnums_negative_and_zero_size_and_vmap():
    def loss(x, y):
        return jnp.sum(x * y) + jnp.sum(y**3)

    x, y = jnp.arange(3.0), jnp.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(hhjax.grad(loss, -1)(x, y), x + 3 * y**2)
    with pytest.raises(TypeError, match="refers to positional argument -3"):
        hhjax.grad(loss, -3)(x, y)
    with pytest.raises(ValueError, match="must not repeat"):
        hhjax.grad(loss, (0, -2))(x, y)
    empty = hhjax.grad(lambda e, y: jnp.sum(e) + jnp.sum(y), mode="forward")(
        jnp.zeros(0), y
    )
    assert empty.shape == (0,)
    batched = jax.vmap(hhjax.grad(loss, 1))(jnp.stack([x, 2 * x]), jnp.stack([y, y]))
    np.testing.assert_allclose(batched[1], 2 * x + 3 * y**2)


@pytest.mark.parametrize("mode", ["auto", "forward", "reverse"])
def test_empty_pytree_argument_has_an_empty_gradient(mode):
    def loss(d, y):
        return y**2

    value, (g_empty, g_y) = hhjax.value_and_grad(loss, (0, 1), mode=mode)({}, 3.0)
    assert value == 9.0 and g_empty == {} and float(g_y) == 6.0
    assert hhjax.grad(loss, mode=mode)({}, 3.0) == {}


@pytest.mark.parametrize("mode", ["auto", "forward"])
def test_aux_need_not_be_arrays_in_forward_mode(mode):
    def loss(x):
        return jnp.sum(x**2), {"tag": "hello", "n": 3, "none": None, "twice": 2 * x}

    x = jnp.array([1.0, 2.0])
    g, aux = hhjax.grad(loss, has_aux=True, mode=mode)(x)
    np.testing.assert_allclose(g, 2 * x)
    assert aux["tag"] == "hello" and aux["n"] == 3 and aux["none"] is None
    np.testing.assert_allclose(aux["twice"], 2 * x)
    g = jax.jit(lambda x: hhjax.grad(loss, has_aux=True, mode=mode)(x)[0])(x)
    np.testing.assert_allclose(g, 2 * x)


def test_forward_mode_gradients_of_python_floats_are_weakly_typed_as_jax_grad():
    def loss(a, b):
        return a**2 * b

    want = jax.grad(loss, (0, 1))(3.0, jnp.float32(2.0))
    for got in (
        hhjax.grad(loss, (0, 1), mode="forward")(3.0, jnp.float32(2.0)),
        jax.jit(hhjax.grad(loss, (0, 1), mode="forward"))(3.0, jnp.float32(2.0)),
    ):
        for a, b in zip(got, want, strict=True):
            assert (a.dtype, a.weak_type) == (b.dtype, b.weak_type)
            np.testing.assert_allclose(a, b)
