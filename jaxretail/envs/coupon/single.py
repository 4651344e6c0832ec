"""One customer of the coupon population as an episodic environment (for per-customer trainers).

The population environment (:class:`~jaxretail.envs.coupon.env.CouponEnv`) steps every customer at
once. Trainers written for one environment at a time (rejax, PureJaxRL, gymnasium loops) want one
decision stream: :class:`SingleCustomerCoupon` is customer ``c`` of the same scenario, one coupon
level per week (``Discrete(L)``), ``horizon`` weeks per episode (``truncated`` at the end; the
customer model itself never terminates). ``reset`` draws ``c`` uniformly from ``params.customers``
(so training and held-out customers can be kept apart).

**Exact**: it runs the population env's own week (:func:`~jaxretail.envs.coupon.env.simulate_week`)
on a one-customer slice of the scenario (a visitor block of 1, so a vmapped batch of views costs one
customer-week each) that keeps the customer's global id, and the population's
randomness is a function of (scenario, week, global customer id) only. So under the same scenario and
the same coupons, customer ``c`` has the same visits, purchases, reward and per-customer state as
row ``c`` of the population env. The one difference is in the observation: features 6-8 of
:data:`~jaxretail.envs.coupon.env.CONTEXT_FEATURES` fall back to a population mean while the customer
has no purchase (resp. no redemption) yet; one customer has no population, so the view uses its own
(zero) values there.

Shapes: observation ``[9]`` float32, action ``[]`` int32 in ``[0, L)``, reward ``[]`` float32.
Invalid levels follow :mod:`jaxretail.core.actions` (clip to ``[0, L - 1]`` + ``info["invalid_action"]``
inside jit, ``ValueError`` outside).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxretail.core import spaces
from jaxretail.core.actions import check_action
from jaxretail.core.environment import Environment, EnvParams, EnvState, as_float32
from jaxretail.core.validation import ConfigError, checked_dataclass, is_traced
from jaxretail.envs.coupon.env import CONTEXT_FEATURES, CouponEnv, CouponParams, CouponState, simulate_week


@struct.dataclass
class SingleCustomerState(EnvState):
    """``t``: weeks of this episode so far; ``customer``: global id ``[]`` int32; ``inner``: the
    population state of a one-customer population (``[1]`` per-customer fields)."""

    customer: jax.Array
    inner: CouponState


@checked_dataclass
class SingleCustomerParams(EnvParams):
    """Build with :func:`single_customer_params` (stores the scenario's PRNG key as raw key data, so
    the params are plain arrays that trainers can deep-copy even inside a trace, as rejax does).

    Raises:
      ValueError: built or replaced with an empty or non-integer id list, ids outside ``[0, U)`` or a
        non-positive ``horizon``.
    """

    population: CouponParams  # the whole scenario (U customers); scenario.noise_key as uint32 key data
    customers: jax.Array  # [M] int32 global ids reset draws from
    horizon: int = struct.field(pytree_node=False, default=10)  # weeks per episode

    def __post_init__(self):
        if not isinstance(self.population, CouponParams):
            raise ConfigError(
                f"SingleCustomerParams.population must be CouponParams, got {type(self.population).__name__}"
            )
        _check_ids(self.customers, self.population.num_customers, "SingleCustomerParams.")
        h = self.horizon
        if isinstance(h, bool) or not isinstance(h, int | np.integer) or h < 1:
            raise ConfigError(f"SingleCustomerParams.horizon must be a positive integer, got horizon={h!r}")


def _check_ids(customers, n: int, owner: str = "") -> None:
    """``customers``: a non-empty 1-D list of integer ids in ``[0, n)`` (a traced list passes)."""
    if is_traced(customers):
        return
    ids = np.asarray(customers)
    if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= n:
        raise ConfigError(
            f"{owner}customers must be a non-empty list of integer ids in [0, {n}), got {customers!r}"
        )


def _is_key(x) -> bool:
    return jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def single_customer_params(
    population: CouponParams, customers=None, horizon: int = 10
) -> SingleCustomerParams:
    """Params of the single-customer view of ``population`` (``customers``: ids reset draws from,
    default all).

    Raises:
      ValueError: for an empty id list, ids outside ``[0, U)`` or a non-positive ``horizon``.
    """
    n = population.num_customers
    if customers is not None:
        _check_ids(customers, n)  # before the cast, which would truncate 1.7 to 1
    ids = jnp.arange(n, dtype=jnp.int32) if customers is None else jnp.asarray(customers, jnp.int32)
    sc = population.scenario
    if _is_key(sc.noise_key):
        sc = sc.replace(noise_key=jax.random.key_data(sc.noise_key))
    return SingleCustomerParams(population.replace(scenario=sc), ids, horizon)  # checks the horizon


def customer_params(params: SingleCustomerParams, customer: jax.Array) -> CouponParams:
    """Population params of the one-customer slice ``customer`` (a traced id is fine)."""
    pop = params.population
    sc = pop.scenario
    if not _is_key(sc.noise_key):
        sc = sc.replace(noise_key=jax.random.wrap_key_data(sc.noise_key))
    take = lambda a: jax.lax.dynamic_slice_in_dim(a, customer, 1)  # noqa: E731
    scenario = sc.replace(
        beta_w_customer=take(sc.beta_w_customer),
        visit_inertia=take(sc.visit_inertia),
        redemption_rate=take(sc.redemption_rate),
    )
    return pop.replace(
        scenario=scenario, num_customers=1, block_size=1, sub_block_size=1, first_customer=customer
    )


class SingleCustomerCoupon(Environment[SingleCustomerState, SingleCustomerParams]):
    """One customer's weeks as an episode (module docstring). Build with
    :func:`make_single_customer_env` or ``SingleCustomerCoupon(single_customer_params(...))``."""

    def __init__(self, params: SingleCustomerParams):
        if params.population.coupon_scope != "store":
            raise ValueError(
                "SingleCustomerCoupon needs coupon_scope='store' (one level per customer), got "
                f"coupon_scope={params.population.coupon_scope!r}"
            )
        self._params = single_customer_params(params.population, params.customers, params.horizon)

    @property
    def default_params(self) -> SingleCustomerParams:
        return self._params

    def action_space(self, params: SingleCustomerParams) -> spaces.Discrete:
        return spaces.Discrete(len(params.population.config.coupon_levels))

    def observation_space(self, params: SingleCustomerParams) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (len(CONTEXT_FEATURES),), jnp.float32)

    def reset_customer(self, customer: jax.Array, params: SingleCustomerParams):
        """Start an episode of one given customer (global id)."""
        customer = jnp.asarray(customer, jnp.int32)
        local = customer_params(params, customer)
        obs, inner = CouponEnv(local).reset_env(jax.random.key(0), local)
        state = SingleCustomerState(t=jnp.asarray(0, jnp.int32), customer=customer, inner=as_float32(inner))
        return obs[0].astype(jnp.float32), state

    def reset_env(self, key: jax.Array, params: SingleCustomerParams):
        pick = jax.random.randint(key, (), 0, params.customers.shape[0])
        return self.reset_customer(params.customers[pick], params)

    def step_env(self, key, state: SingleCustomerState, action, params: SingleCustomerParams):
        del key  # the scenario fixes the randomness (common random numbers)
        level, invalid = check_action(self.action_space(params), action)
        out = simulate_week(
            state.inner, level.astype(jnp.int32)[None], customer_params(params, state.customer)
        )
        state = SingleCustomerState(t=state.t + 1, customer=state.customer, inner=as_float32(out["state"]))
        info = {k: v[0] for k, v in out["info"].items()}
        info["invalid_action"] = invalid
        truncated = state.t >= params.horizon
        obs = out["obs"][0].astype(jnp.float32)
        return obs, state, out["reward"][0].astype(jnp.float32), jnp.asarray(False), truncated, info


def make_single_customer_env(
    config=None,
    *,
    num_customers: int = 64,
    horizon: int = 10,
    seed: int = 0,
    customers=None,
    **param_kwargs,
) -> SingleCustomerCoupon:
    """A :class:`SingleCustomerCoupon` on a fresh scenario (``config``: a ``ScenarioConfig`` or a
    name of :data:`~jaxretail.envs.coupon.configs.CONFIGS`, default ``"benchmark"``).

    ``customers`` (default all ``num_customers``) are the ids reset draws from; other keyword
    arguments go to :func:`~jaxretail.envs.coupon.env.make_params`.
    """
    from jaxretail.envs.coupon.configs import get_config
    from jaxretail.envs.coupon.env import make_params
    from jaxretail.envs.coupon.generator import sample_scenario

    cfg = get_config("benchmark") if config is None else config
    cfg = get_config(cfg) if isinstance(cfg, str) else cfg
    scenario = sample_scenario(jax.random.key(seed), cfg, num_customers)
    pop = make_params(scenario, cfg, **{"block_size": 64, **param_kwargs})
    return SingleCustomerCoupon(single_customer_params(pop, customers, horizon))
