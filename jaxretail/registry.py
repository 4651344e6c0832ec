"""Environment ids: ``jaxretail.make(env_id, **kwargs) -> (env, params)`` and gymnax registration.

- ``jaxretail/assortment-v0``: ``DynamicAssortment``, ``FixedSizeSubset(N, K)`` mask action;
- ``jaxretail/assortment-scores-v0``: ``TopKScores(DynamicAssortment)``, ``Box(-1, 1, (N,))`` scores;
- ``jaxretail/assortment-subsets-v0``: ``SubsetIndex(DynamicAssortment)``, ``Discrete(C(N, K))``;
- ``jaxretail/coupon-customer-v0``: ``SingleCustomerCoupon`` (one customer's weeks), ``Discrete(L)``.

Keyword arguments go to the environment's constructor (e.g. ``num_items=6, assortment_size=2``;
for the coupon view ``config``, ``num_customers``, ``horizon``, ``seed``). gymnax 1.0.1's registry is
extensible (``gymnax.register``), so :func:`register_gymnax` makes ``gymnax.make(env_id, **kwargs)``
return the gymnax form (:func:`~jaxretail.core.gymnax_compat.to_gymnax`) of the same environment.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def _assortment(**kw):
    from jaxretail.envs.assortment import DynamicAssortment

    return DynamicAssortment(**kw)


def _scores(**kw):
    from jaxretail.core.action_views import TopKScores

    return TopKScores(_assortment(**kw))


def _subsets(**kw):
    from jaxretail.core.action_views import SubsetIndex

    return SubsetIndex(_assortment(**kw))


def _coupon_customer(**kw):
    from jaxretail.envs.coupon.single import make_single_customer_env

    return make_single_customer_env(**kw)


_FACTORIES: dict[str, Callable[..., Any]] = {
    "jaxretail/assortment-v0": _assortment,
    "jaxretail/assortment-scores-v0": _scores,
    "jaxretail/assortment-subsets-v0": _subsets,
    "jaxretail/coupon-customer-v0": _coupon_customer,
}
ENV_IDS = tuple(_FACTORIES)


def make(env_id: str, **kwargs) -> tuple[Any, Any]:
    """``(env, env.default_params)`` for a jaxretail id (table in the module docstring).

    Raises:
      ValueError: for an unknown id (the message lists the known ones).
    """
    if env_id not in _FACTORIES:
        raise ValueError(f"unknown environment id {env_id!r}; choose one of {list(ENV_IDS)}")
    env = _FACTORIES[env_id](**kwargs)
    return env, env.default_params


def _make_gymnax(env_id: str, **kwargs):
    from jaxretail.core.gymnax_compat import to_gymnax

    return to_gymnax(make(env_id, **kwargs)[0])


def register_gymnax() -> list[str]:
    """Register every id with ``gymnax.register`` (idempotent); returns the registered ids.

    ``jaxretail/assortment-v0`` is registered too, but its ``FixedSizeSubset`` action has no gymnax
    space, so ``gymnax.make`` of it raises a ``TypeError`` naming the two views to use.
    """
    import gymnax

    for env_id in ENV_IDS:
        if env_id not in gymnax.registered_envs:
            gymnax.register(env_id, functools.partial(_make_gymnax, env_id))
    return [i for i in ENV_IDS if i in gymnax.registered_envs]
