"""Parameter classes that validate when built by a user but not when JAX rebuilds their pytree node."""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxretail.core.validation.checks import is_traced


def checked_dataclass(clz: type) -> type:
    """``flax.struct.dataclass`` whose constructor validates but whose pytree rebuild does not.

    The class's own ``__post_init__`` checks the fields (with the same rules as its ``make_params``):
    it runs when a user builds the params directly or calls ``.replace(...)``, so a concrete bad value
    (NaN, a wrong sign, a probability above 1, a value of an unexpected type) is refused there; values
    that are JAX tracers (under ``jit``, ``vmap``, ``grad``) are passed through by the ``check_*``
    functions. JAX also rebuilds the node for trees that are not parameters -- an ``in_axes`` spec
    ``jax.tree.map(lambda _: 0, p)``, a mask ``jax.tree.map(jnp.isnan, p)``, the cotangents of
    ``jax.grad`` -- so the node's unflatten builds the instance without ``__init__`` /
    ``__post_init__`` (``object.__new__`` and the fields set one by one), and those trees pass.

    ``replace`` validates its result. On a tree JAX rebuilt that is not a parameter set itself (a spec,
    a mask, a gradient) it only swaps the fields, so the usual ``in_axes`` idiom
    ``jax.tree.map(lambda _: None, p).replace(price_weight=0)`` works. A flax state dict restored
    (``from_state_dict`` / ``from_bytes``, hence orbax restores) is validated when every restored value is
    concrete, so params loaded from a file with a NaN are refused. Trees that other libraries rebuild
    themselves (an orbax restore) are not: call :func:`check_params` on them.

    Fields are split as in flax: ``struct.field(pytree_node=False)`` fields are static (aux data),
    the others are children with ``GetAttrKey`` paths.
    """
    import dataclasses

    import jax
    from flax import serialization

    if "_flax_dataclass" in clz.__dict__:
        raise TypeError(f"{clz.__name__} is already a flax dataclass; decorate it only once")
    check = clz.__dict__.get("__post_init__")

    def post_init(self):
        if check is not None:
            check(self)
        object.__setattr__(self, _VALIDATED, True)

    clz.__post_init__ = post_init
    data_clz = dataclasses.dataclass(frozen=True)(clz)
    fields = dataclasses.fields(data_clz)
    meta = tuple(f.name for f in fields if not f.metadata.get("pytree_node", True))
    data = tuple(f.name for f in fields if f.metadata.get("pytree_node", True))

    def replace(self, **updates):
        """A new instance with ``updates``, validated like a direct construction.

        On a tree JAX rebuilt (``device_put``, a jit output, a spec or a mask) the result is validated
        too, unless ``self`` itself fails the checks: then ``self`` is not a parameter set (an ``in_axes``
        spec of ``None`` / ``0``, a mask) and the fields are only swapped.
        """
        if self.__dict__.get(_VALIDATED, False):
            return dataclasses.replace(self, **updates)
        unknown = set(updates) - set(meta) - set(data)
        if unknown:
            raise TypeError(f"{clz.__name__}.replace() got unknown fields {sorted(unknown)}")
        values = {n: updates.get(n, getattr(self, n)) for n in meta + data}
        out = rebuild(tuple(values[n] for n in meta), tuple(values[n] for n in data))
        try:
            post_init(out)
        except (ValueError, TypeError):
            if _passes(self):
                raise  # real params broken by the update
        return out

    def _passes(obj) -> bool:  # on a copy: the flag marks validated instances only
        children, aux = flatten(obj)
        try:
            post_init(rebuild(aux, children))
        except (ValueError, TypeError):
            return False
        return True

    def rebuild(aux, children):
        obj = object.__new__(data_clz)
        for name, value in zip(meta, aux, strict=True):
            object.__setattr__(obj, name, value)
        for name, value in zip(data, children, strict=True):
            object.__setattr__(obj, name, value)
        return obj

    def flatten(x):
        return tuple(getattr(x, n) for n in data), tuple(getattr(x, n) for n in meta)

    def flatten_with_keys(x):
        children = tuple((jax.tree_util.GetAttrKey(n), getattr(x, n)) for n in data)
        return children, tuple(getattr(x, n) for n in meta)

    def to_state_dict(x):
        return {n: serialization.to_state_dict(getattr(x, n)) for n in data}

    def from_state_dict(x, state):
        state = dict(state)
        missing = [n for n in data if n not in state]
        if missing or set(state) - set(data):
            raise ValueError(
                f"state dict of {clz.__name__} must hold the fields {list(data)}, got {sorted(state)}"
            )
        children = [serialization.from_state_dict(getattr(x, n), state[n], name=n) for n in data]
        restored = rebuild(flatten(x)[1], children)
        leaves = jax.tree.leaves(children)
        if leaves and is_concrete(*leaves):
            post_init(restored)  # params loaded from a file are checked like params built by hand
        return restored

    data_clz.replace = replace
    jax.tree_util.register_pytree_with_keys(data_clz, flatten_with_keys, rebuild, flatten)
    serialization.register_serialization_state(data_clz, to_state_dict, from_state_dict)
    data_clz._flax_dataclass = True
    return data_clz


def check_params(params: Any) -> Any:
    """Run the checks of a :func:`checked_dataclass` instance (e.g. params restored by orbax, which
    rebuilds the tree without them) and return it; raises the class's ``ConfigError``."""
    type(params).__post_init__(params)
    return params


_VALIDATED = "_jaxretail_validated"  # instance attribute (not a field): set once the checks passed


def is_concrete(*values: Any) -> bool:
    """True when none of ``values`` is a JAX tracer (so a check of them can run on the host)."""
    return not any(is_traced(v) for v in values)


def fingerprint(*arrays: Any) -> np.uint32:
    """A uint32 identity (CRC-32) of concrete arrays: their shapes, dtypes and bytes."""
    import zlib

    crc = 0
    for a in arrays:
        arr = np.ascontiguousarray(np.asarray(a))
        crc = zlib.crc32(f"{arr.dtype.str}{arr.shape}".encode(), crc)
        crc = zlib.crc32(arr.tobytes(), crc)
    return np.uint32(crc)
