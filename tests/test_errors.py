"""Bad input gets a clear, specific error before anything is traced."""

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax import HHParams, HHState, stimulus

I_OK = stimulus.constant(5.0, 2.0, 0.025)


@pytest.mark.parametrize("dt", [0.0, -0.01, float("nan"), float("inf")])
def test_dt_must_be_positive_and_finite(dt):
    with pytest.raises(ValueError, match=r"`dt` must be a positive, finite step in ms"):
        hhjax.simulate(HHParams(), I_OK, dt)


def test_dt_must_be_scalar():
    with pytest.raises(ValueError, match=r"`dt` must be a scalar step in ms"):
        hhjax.simulate(HHParams(), I_OK, jnp.array([0.01, 0.02]))


def test_large_euler_step_warns_like_pyhh():
    with pytest.warns(hhjax.StepSizeWarning, match=r"dt = 0.06 ms is above 0.05 ms"):
        hhjax.simulate(HHParams(), stimulus.constant(0.0, 0.6, 0.06), 0.06, method="euler")


@pytest.mark.parametrize("i_ext", [5.0, jnp.zeros((0,))])
def test_current_needs_a_time_axis(i_ext):
    with pytest.raises(ValueError, match=r"`i_ext` must have shape \(time, \*batch\)"):
        hhjax.simulate(HHParams(), i_ext, 0.025)


def test_non_finite_current_is_rejected_with_its_index():
    i_ext = np.asarray(I_OK).copy()
    i_ext[17] = np.nan
    with pytest.raises(ValueError, match=r"non-finite values \(first at time index 17\)"):
        hhjax.simulate(HHParams(), i_ext, 0.025)


def test_a_numpy_current_is_checked_again_after_it_changes():
    # The value checks of a jax.Array are remembered (it is immutable); a NumPy
    # array can change between calls and is checked on every call.
    i_ext = np.asarray(I_OK).copy()
    hhjax.simulate(HHParams(), i_ext, 0.025)
    i_ext[5] = np.inf
    with pytest.raises(ValueError, match=r"non-finite values \(first at time index 5\)"):
        hhjax.simulate(HHParams(), i_ext, 0.025)
    g_na = np.array([120.0, 110.0])
    hhjax.simulate(HHParams(g_na=g_na), I_OK, 0.025)
    g_na[1] = -1.0
    with pytest.raises(ValueError, match=r"Conductance `g_na` \(mS/cm\^2\) must be >= 0"):
        hhjax.simulate(HHParams(g_na=g_na), I_OK, 0.025)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_16_bit_floats_and_complex_numbers_are_refused(dtype):
    # bfloat16 (a float type of ml_dtypes, though NumPy does not say so) ran, but
    # V stayed at -65 mV under 10 uA/cm^2: a step's change is below the spacing
    # of bfloat16 numbers there.
    with pytest.raises(ValueError, match=r"`i_ext` has dtype b?float16: hhjax computes in float32 or float64"):
        hhjax.simulate(HHParams(), I_OK.astype(dtype), 0.025)
    params = HHParams(g_k=jnp.asarray(36.0, dtype))
    with pytest.raises(ValueError, match=r"`params.g_k` has dtype b?float16"):
        jax.jit(lambda p: hhjax.simulate(p, I_OK, 0.025).v)(params)
    with pytest.raises(ValueError, match=r"`params.g_k` has dtype b?float16"):
        hhjax.resting_state(params)
    with pytest.raises(ValueError, match=r"`g_na` must be finite real numbers"):
        hhjax.simulate(HHParams(g_na=jnp.array(120 + 1j)), I_OK, 0.025)


def test_a_bad_jax_array_is_refused_on_every_call():
    bad_current = jnp.asarray(I_OK).at[3].set(jnp.nan)
    bad_g = jnp.array([120.0, -5.0])
    for _ in range(2):
        with pytest.raises(ValueError, match=r"first at time index 3"):
            hhjax.simulate(HHParams(), bad_current, 0.025)
        with pytest.raises(ValueError, match=r"Conductance `g_na`"):
            hhjax.simulate(HHParams(g_na=bad_g), I_OK, 0.025)


def test_current_in_pa_is_recognised():
    with pytest.raises(ValueError, match=r"looks like a current in pA.*pa_to_density"):
        hhjax.simulate(HHParams(), stimulus.constant(2500.0, 2.0, 0.025), 0.025)


def test_mismatched_batch_shapes_are_named():
    i_ext = stimulus.constant(jnp.ones(3), 2.0, 0.025)  # batch (3,)
    with pytest.raises(ValueError, match=r"must broadcast together.*params\.g_na \(4,\)"):
        hhjax.simulate(HHParams(g_na=jnp.ones(4) * 120.0), i_ext, 0.025)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown integration method 'rk45'.*'euler'"):
        hhjax.simulate(HHParams(), I_OK, 0.025, method="rk45")


def test_unknown_record_field():
    with pytest.raises(ValueError, match=r"`record` must be 'all' or names among"):
        hhjax.simulate(HHParams(), I_OK, 0.025, record=("v", "voltage"))


@pytest.mark.parametrize("dt", ["0.025", 0.025 + 0j, True])
def test_dt_must_be_a_real_number(dt):
    with pytest.raises(ValueError, match=r"`dt` must be a real number of ms"):
        hhjax.simulate(HHParams(), I_OK, dt)


def test_stride_may_be_a_numpy_integer_but_not_a_bool():
    trace = hhjax.simulate(HHParams(), I_OK, 0.025, stride=np.int64(2))
    assert trace.v.shape == (I_OK.shape[0] // 2,)
    with pytest.raises(ValueError, match=r"`stride` must be a positive integer"):
        hhjax.simulate(HHParams(), I_OK, 0.025, stride=True)


def test_stride_must_divide_the_steps():
    with pytest.raises(ValueError, match=r"`stride` must be a positive integer dividing"):
        hhjax.simulate(HHParams(), I_OK, 0.025, stride=7)


def test_state0_must_match_the_model():
    with pytest.raises(TypeError, match=r"`state0` must be a HHState"):
        hhjax.simulate(HHParams(), I_OK, 0.025, state0=(-65.0, 0.05, 0.6, 0.3))


@pytest.mark.parametrize(
    "state0, pattern",
    [
        (HHState(v=-65.0, m=5.0, h=0.6, n=0.3), r"Gate `state0.m` .* must lie in \[0, 1\]"),
        (HHState(v=np.nan, m=0.05, h=0.6, n=0.3), r"`state0.v` must be finite"),
    ],
)
def test_state0_values_are_checked(state0, pattern):
    with pytest.raises(ValueError, match=pattern):
        hhjax.simulate(HHParams(), I_OK, 0.025, state0=state0)


def test_a_run_continues_from_its_own_final_state():
    # Forward Euler at its step limit overshoots [0, 1] (m = 1.004 after 76 steps
    # here); the final state is still a valid start for the next run.
    params = hhjax.PospischilParams.rs()
    i_ext = stimulus.constant(10.0, 3.8, 0.05)
    _, final = hhjax.simulate(params, i_ext, 0.05, method="euler", return_state=True)
    assert float(final.m) > 1.0
    trace = hhjax.simulate(params, i_ext, 0.05, method="euler", state0=final)
    assert np.all(np.isfinite(trace.v))


def test_step_checks_the_state_type():
    with pytest.raises(TypeError, match=r"`state` must be a HHState"):
        state = hhjax.PospischilState(*[0.5] * len(hhjax.PospischilState._fields))
        hhjax.step(state, HHParams(), 1.0, 0.025)


def test_complex_current_is_refused():
    with pytest.raises(ValueError, match=r"`i_ext` must be real currents in uA/cm\^2"):
        hhjax.simulate(HHParams(), np.asarray(I_OK) + 1j, 0.025)


def test_lists_are_batches_like_arrays():
    state0 = hhjax.resting_state(HHParams())
    as_list = hhjax.simulate(
        HHParams(g_na=[100.0, 120.0]), I_OK, 0.025, state0=state0._replace(v=[-65.0, -60.0])
    )
    as_array = hhjax.simulate(
        HHParams(g_na=np.array([100.0, 120.0])),
        I_OK,
        0.025,
        state0=state0._replace(v=np.array([-65.0, -60.0])),
    )
    np.testing.assert_array_equal(as_list.v, as_array.v)
    assert as_list.v.shape == (len(I_OK), 2)
    stepped = hhjax.step(state0, HHParams(g_na=[100.0, 120.0]), 1.0, 0.025)
    assert stepped.v.shape == (2,)


def test_step_size_warning_accounts_for_temperature():
    i_ext = stimulus.constant(0.0, 0.5, 0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error", hhjax.StepSizeWarning)
        hhjax.simulate(HHParams(temperature=25.0), i_ext, 0.05)  # the limit covers 25 degC
    with pytest.warns(hhjax.StepSizeWarning, match=r"above 0.0346 ms.*rates 13.5x"):
        hhjax.simulate(HHParams(temperature=30.0), i_ext, 0.05)


def test_a_model_cannot_take_over_another_models_parameter_type():
    from hhjax.channels.hh import Potassium, Sodium

    class NoLeakTrace(NamedTuple):
        t: object
        v: object
        m: object
        h: object
        n: object
        i_na: object
        i_k: object

    with pytest.raises(ValueError, match=r"HHParams already belongs to model 'hh'"):
        hhjax.Model("hh_noleak", [Sodium(), Potassium()], HHParams, HHState, NoLeakTrace, 6.3)
    assert hhjax.model_of(HHParams()).name == "hh"

    class NoLeakParams(HHParams):
        pass

    # A channel class instead of an instance failed later, inside simulate.
    with pytest.raises(TypeError, match=r"got <class .*Sodium'> \(a class: use an "
                       r"instance, Sodium\(\)\)"):  # fmt: skip
        hhjax.Model("x", [Sodium, Potassium()], NoLeakParams, HHState, NoLeakTrace, 6.3)
    model = hhjax.Model(
        "hh_noleak", [Sodium(), Potassium()], NoLeakParams, HHState, NoLeakTrace, 6.3
    )
    assert model.channels == (Sodium(), Potassium())  # a list becomes a tuple
    trace = hhjax.simulate(NoLeakParams(), I_OK, 0.025, state0=hhjax.resting_state(HHParams()))
    assert isinstance(trace, NoLeakTrace) and np.isfinite(np.asarray(trace.v)).all()


def test_a_model_names_what_its_parameters_or_its_channels_lack():
    import dataclasses

    from hhjax.channels.hh import Leak, Potassium

    class KTrace(NamedTuple):
        t: object
        v: object
        n: object
        i_k: object
        i_l: object

    class KState(NamedTuple):
        v: object
        n: object

    def params_type(name, *extra):
        fields = ["g_k", "e_k", "g_l", "e_l", "c_m", "temperature", "q10_g", *extra]
        values = {"g_k": 36.0, "e_k": -77.0, "g_l": 0.3, "e_l": -54.4, "c_m": 1.0}
        values.update(temperature=6.3, q10_g=1.0, q10=3.0, v_shift=0.0)
        cls = NamedTuple(name, [(f, float) for f in fields])
        cls.__new__.__defaults__ = tuple(values[f] for f in fields)
        return cls

    with pytest.raises(TypeError, match=r"NoQ10 has no field\(s\) \['q10'\], which"):
        hhjax.Model("k_only", [Potassium(), Leak()], params_type("NoQ10"), KState, KTrace, 6.3)
    no_shift = params_type("NoShift", "q10")  # Potassium's rates read v_shift
    hhjax.Model("k_only", [Potassium(), Leak()], no_shift, KState, KTrace, 6.3)
    state0 = KState(jnp.asarray(-65.0), jnp.asarray(0.3))
    with pytest.raises(TypeError, match=r"Channel 'k' \(Potassium\) reads parameter 'v_shift', which NoShift has no field"):
        hhjax.simulate(no_shift(), I_OK, 0.025, state0=state0)

    @dataclasses.dataclass(frozen=True)
    class TypoK(Potassium):  # a rate returned under another name than its gate
        def rates(self, v, params):
            return {"N": super().rates(v, params)["n"]}

    typo = params_type("Typo", "q10", "v_shift")
    hhjax.Model("k_typo", [TypoK(), Leak()], typo, KState, KTrace, 6.3)
    with pytest.raises(ValueError, match=r"declares gates \('n',\) but its rates\(\) returned \('N',\)"):
        hhjax.simulate(typo(), I_OK, 0.025, state0=state0)


def test_params_must_be_a_model_parameter_tuple():
    with pytest.raises(TypeError, match=r"`params` must be a model's parameter tuple"):
        hhjax.simulate({"g_na": 120.0}, I_OK, 0.025)


@pytest.mark.parametrize(
    "params,pattern",
    [
        (HHParams(c_m=0.0), r"`c_m` \(uF/cm\^2\) must be > 0"),
        (HHParams(g_k=-1.0), r"Conductance `g_k` \(mS/cm\^2\) must be >= 0"),
        (HHParams(g_na=1.2e5), r"`g_na` \(mS/cm\^2\) must be <= 100000 .*uS/cm\^2"),
        (HHParams(e_na=float("nan")), r"Parameter `e_na` must be finite"),
        (HHParams(q10=0.0, temperature=20.0), r"`q10` \(dimensionless\) must be > 0"),
        (HHParams(q10=-3.0, temperature=20.0), r"`q10` \(dimensionless\) must be > 0"),
        (HHParams(temperature=-300.0), r"`temperature` \(degC\) must be above"),
        (HHParams(temperature=279.45), r"`temperature` must be in degC.*kelvin"),
        (HHParams(g_na="120"), r"`g_na` must be finite real numbers; got '120'"),
        (HHParams(g_na=10**400), r"`g_na` must be finite real numbers"),
        (
            hhjax.PospischilParams(tau_max=np.array([500.0, -1.0])),
            r"`tau_max` \(ms\) must be > 0",
        ),
    ],
)
def test_unphysical_parameters(params, pattern):
    with pytest.raises(ValueError, match=pattern):
        hhjax.simulate(params, I_OK, 0.025)


def test_divergence_is_reported_with_advice():
    # Forward Euler far beyond its stability limit on a strong drive blows up.
    i_ext = stimulus.constant(100.0, 20.0, 0.2)
    with pytest.warns(hhjax.StepSizeWarning), pytest.raises(
        hhjax.NonFiniteSimulationError, match=r"non-finite.*Reduce `dt`.*uA/cm\^2"
    ):
        hhjax.simulate(HHParams(), i_ext, 0.2, method="euler", state0=HHState(
            v=-65.0, m=0.05, h=0.6, n=0.3))


@pytest.mark.parametrize("transform", [jax.grad, hhjax.grad])
def test_divergence_under_grad_is_reported(transform):
    # Outside jit the check still sees concrete values (jax.grad's tracers wrap
    # them): the same error, not a tracer-conversion error from deep inside JAX.
    i_ext = stimulus.constant(100.0, 20.0, 0.2)
    state0 = HHState(v=-65.0, m=0.05, h=0.6, n=0.3)

    def loss(g_na):
        params = HHParams(g_na=g_na)
        return hhjax.simulate(params, i_ext, 0.2, method="euler", state0=state0).v[-1]

    with pytest.warns(hhjax.StepSizeWarning), pytest.raises(
        hhjax.NonFiniteSimulationError, match=r"non-finite .*at t = .* ms.*Reduce `dt`"
    ):
        transform(loss)(120.0)


def test_divergence_advice_names_another_method():
    i_ext = stimulus.constant(10.0, 50.0, 0.2)
    with pytest.warns(hhjax.StepSizeWarning), pytest.raises(
        hhjax.NonFiniteSimulationError
    ) as info:
        hhjax.simulate(HHParams(), i_ext, 0.2, method="exp_euler")
    assert "'exp_euler' or" not in str(info.value)


def test_a_cell_without_a_resting_state_is_named_as_such():
    # All conductances 0: the rest is NaN, and the run "became non-finite at
    # t = 0" with advice to reduce dt.
    none = HHParams(g_na=0.0, g_k=0.0, g_l=0.0)
    with pytest.raises(hhjax.NonFiniteSimulationError, match=r"which these parameters \(of at least one cell\) lack.*Pass a `state0`"):
        hhjax.simulate(none, I_OK, 0.025)
    given = hhjax.simulate(none, I_OK, 0.025, state0=HHState(-65.0, 0.05, 0.6, 0.3))
    assert np.isfinite(np.asarray(given.v)).all()
    with pytest.raises(ValueError, match=r"The shapes of `i_ext` and the parameters must broadcast together; got params.g_na \(2,\), params.g_k \(3,\)"):
        hhjax.resting_state(HHParams(g_na=jnp.ones(2), g_k=jnp.ones(3)))


def test_stimulus_builders_reject_bad_input():
    with pytest.raises(ValueError, match=r"not a whole number of steps"):
        stimulus.constant(1.0, 1.01, 0.025)
    with pytest.raises(
        ValueError, match=r"0 <= start <= stop <= duration .*start = 2.0, stop = 1.0"
    ):
        stimulus.step(1.0, start=2.0, stop=1.0, duration=5.0, dt=0.025)
    with pytest.raises(ValueError, match=r"`tau` must be a positive, finite number \(ms\)"):
        stimulus.ornstein_uhlenbeck(0.0, 1.0, 0.0, duration=5.0, dt=0.025)
    with pytest.raises(ValueError, match=r"`t` must be strictly increasing"):
        stimulus.resample([1.0, 2.0, 3.0], [0.0, 0.2, 0.1], dt=0.05)
    with pytest.raises(ValueError, match=r"capacitance `c_pf` must be > 0 pF"):
        stimulus.pa_to_density(100.0, 0.0)


def test_concrete_parameters_are_checked_beside_traced_ones():
    # Differentiating w.r.t. g_na leaves the other fields concrete: still checked.
    def loss(g_na):
        params = HHParams(g_na=g_na, c_m=-1.0)
        return hhjax.simulate(params, I_OK, 0.025).v.sum()

    with pytest.raises(ValueError, match=r"`c_m` \(uF/cm\^2\) must be > 0"):
        jax.grad(loss)(120.0)


def test_a_batch_first_current_is_flagged():
    # (batch, time) for (time, *batch): 3 "steps" of 0.025 ms for 1000 "cells".
    one = stimulus.constant(5.0, 25.0, 0.025)
    i_ext = jnp.stack([one, one / 2, 2 * one])
    with pytest.warns(hhjax.TimeAxisWarning, match=r"shape \(3, 1000\): 3 time steps"):
        hhjax.simulate(HHParams(), i_ext, 0.025, record=("v",))
    with warnings.catch_warnings():
        warnings.simplefilter("error", hhjax.TimeAxisWarning)
        hhjax.simulate(HHParams(), i_ext.T, 0.025, record=("v",))  # (time, batch)
        hhjax.simulate(HHParams(), i_ext, 0.025, check_inputs=False)  # on purpose
        hhjax.simulate(HHParams(), i_ext[:, :20], 0.025)  # not 10x longer
        long_rows = jnp.zeros((50, 2000))  # 50 steps: 1.25 ms, not under 1 ms
        hhjax.simulate(HHParams(), long_rows, 0.025, record=("v",))


def test_a_trace_too_large_for_memory_is_a_memory_error_naming_its_size():
    # 10^8 cells (a (1000, 10^5) batch from two small arrays) x 10^6 steps: each
    # recorded field would take 400-800 TB, more than any address space, so
    # the allocation fails at once. np.asarray of the failed run's finiteness flag
    # waited forever (XLA:CPU, JAX 0.10).
    params = HHParams(g_na=jnp.full((1000, 1), 120.0), g_k=jnp.full((1, 10**5), 36.0))
    rest = hhjax.resting_state(HHParams())
    with pytest.raises(MemoryError, match=r"ran out of memory \(RESOURCE_EXHAUSTED") as info:
        hhjax.simulate(params, np.zeros(10**6), 0.025, state0=rest)
    assert "7 fields of shape (1000000, 1000, 100000), float" in str(info.value)
    assert "Record fewer fields (e.g. `record=('v',)`)" in str(info.value)
    # V only, a float32 current with float64 parameters: the trace is float64
    # (its size was given in the current's float32, half of it), and the advice
    # no longer offers what was done.
    with pytest.raises(MemoryError, match=r"ran out of memory") as info:
        hhjax.simulate(
            params, np.zeros(10**6, np.float32), 0.025, state0=rest, record=("v",)
        )
    assert "takes 7.45e+05 GiB (1 field of shape (1000000, 1000, 100000), float64)" in str(info.value)
    assert "Record fewer samples (a larger `stride`)" in str(info.value)


def test_a_nan_current_under_jax_grad_is_named_not_blamed_on_the_step():
    # The current is traced (it depends on the differentiated scale), so the input
    # check is skipped; the divergence then named dt and the method, and
    # max |i_ext| (XLA:CPU's max skips NaN) as if the current were fine.
    i_ext = np.asarray(stimulus.constant(10.0, 2.0, 0.025)).copy()
    i_ext[10] = np.nan

    def loss(scale):
        return hhjax.simulate(HHParams(), i_ext * scale, 0.025).v.sum()

    with pytest.raises(ValueError, match=r"`i_ext` contains non-finite values \(first at time index 10\)"):
        jax.grad(loss)(1.0)



def test_a_reversal_potential_far_beyond_any_nernst_potential_is_refused():
    # e_na = 1e9 ran and held V at 207 mV without a word.
    with pytest.raises(ValueError, match=r"Reversal potential `e_na` \(mV\) must lie within ±500 mV; got 1000000000\.0"):
        hhjax.simulate(HHParams(e_na=1e9), I_OK, 0.025)
    hhjax.simulate(HHParams(e_k=-200.0), I_OK, 0.025)  # extreme but possible
