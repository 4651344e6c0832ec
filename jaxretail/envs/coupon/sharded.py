"""The coupon environment's week with the customer axis split over devices by ``jax.shard_map``.

Each device simulates its own block of customers: it compacts its own visitors and streams them in
blocks, with no communication inside the week. Random numbers are keyed by global customer ids (a
shard on position ``k`` of the mesh axis holds customers ``k U/n .. (k+1) U/n - 1``), and the only
collective is one ``psum`` per population-wide context mean, so the results equal the single-device
run. Per-product state (shelf chain, prices) is computed redundantly on every device.

    mesh = customer_mesh()
    state = shard_state(state, mesh)
    step = sharded_step(params, mesh)
    obs, state, reward, info = step(state, action)       # action [U], sharded like the state
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxretail.core.sharding import AXIS
from jaxretail.envs.coupon.env import CouponEnv, CouponParams, CouponState, Summaries, simulate_week

_CUSTOMER_SCENARIO_FIELDS = ("beta_w_customer", "visit_inertia", "redemption_rate")


def state_specs(state: CouponState, axis: str = AXIS) -> CouponState:
    """Partition specs of a population state: customer arrays split, per-product arrays replicated."""
    split = P(axis)
    return state.replace(
        t=P(),
        shelf=jax.tree.map(lambda _: P(), state.shelf),
        price=P(),
        discount=P(),
        marketing=split,
        visit_probability=split,
        visited=split,
        store_value=split,
        previous_items=split,
        previous_coupon=split,
        observed_feature=split,
        summaries=Summaries(P(), *([split] * 7)),
        first_step=P(),
    )


def scenario_specs(params: CouponParams, axis: str = AXIS):
    sc = params.scenario
    return sc.replace(**{k: (P(axis) if k in _CUSTOMER_SCENARIO_FIELDS else P()) for k in vars(sc)})


def _check(params: CouponParams, mesh: Mesh, axis: str) -> int:
    n = mesh.shape[axis]
    if params.num_customers % n:
        raise ValueError(
            f"num_customers={params.num_customers} must be divisible by the {n} devices of mesh axis {axis!r}"
        )
    return params.num_customers // n


def shard_state(state: CouponState, mesh: Mesh, axis: str = AXIS) -> CouponState:
    """Place a population state on ``mesh`` (customer arrays split along ``axis``)."""
    specs = state_specs(state, axis)
    return jax.tree.map(lambda x, s: jax.device_put(x, NamedSharding(mesh, s)), state, specs)


def sharded_step(params: CouponParams, mesh: Mesh, axis: str = AXIS):
    """Jitted ``step(state, action) -> (obs [U, 9], state, reward [U], info)`` of one week, each device
    simulating its ``U / n`` customers (the store-wide action ``[U]`` or per-category ``[U, J]``)."""
    week = sharded_week(params, mesh, axis)
    return jax.jit(lambda state, action: week(state, action))


def sharded_week(params: CouponParams, mesh: Mesh, axis: str = AXIS):
    """The un-jitted ``week(state, action) -> (obs, state, reward, info)`` of :func:`sharded_step`, to
    call inside a traced loop (e.g. ``lax.scan`` over weeks; on host devices of one CPU this runs the
    per-slot work of each shard on its own core)."""
    local_customers = _check(params, mesh, axis)
    abstract = jax.eval_shape(lambda: _reset_state(params))
    sspec = state_specs(abstract, axis)
    info_spec = {k: P(axis) for k in ("revenue", "demand", "visited", "categories", "coupon", "redeemed",
                                      "redeemed_lines", "category_mask", "discount", "invalid_action",
                                      "nonfinite")}  # fmt: skip

    def body(state, action, scenario):
        local = params.replace(scenario=scenario, num_customers=local_customers, axis_name=axis)
        out = simulate_week(state, action, local)
        return out["obs"], out["state"], out["reward"], out["info"]

    mapped = jax.shard_map(
        body,
        mesh=mesh,
        in_specs=(sspec, P(axis), scenario_specs(params, axis)),
        out_specs=(P(axis), sspec, P(axis), info_spec),
        check_vma=False,  # the per-product state is computed identically on every device
    )
    return lambda state, action: mapped(state, action, params.scenario)


def sharded_rollout(params: CouponParams, mesh: Mesh, policy, num_weeks: int, axis: str = AXIS):
    """The un-jitted ``run(key) -> (reward totals [T], visit rates [T])`` of ``num_weeks`` weeks from
    ``reset(key)``, the customers split over ``mesh`` (:func:`sharded_week`); week ``t``'s coupons are
    ``policy(fold_in(key, t), obs, state, params)``."""
    week = sharded_week(params, mesh, axis)
    env = CouponEnv(params)

    def run(key):
        obs, state = env.reset(key, params)

        def body(carry, t):
            obs, state = carry
            action = policy(jax.random.fold_in(key, t), obs, state, params)
            obs, state, reward, info = week(state, action)
            return (obs, state), (reward.sum(), info["visited"].mean())

        return jax.lax.scan(body, (obs, state), jnp.arange(num_weeks))[1]

    return run


def _reset_state(params: CouponParams) -> CouponState:
    return CouponEnv(params).reset(jax.random.key(0), params)[1]
