"""The networks' orthogonal initializer: the distribution of ``jax.nn``'s, and no LAPACK call.

Batched LAPACK QR (``geqrf`` custom calls, one per layer, under ``vmap`` over seeds) deadlocks XLA's
CPU thread pool on 2-core machines (jaxlib 0.10): ``jax.jit(jax.vmap(init))`` of six 64 x 64 layers
over 4 keys hung on its second call. The regression tests check that no network initialisation
lowers to a LAPACK custom call, and that the initializer is the same function of the key.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxretail.agents.networks import MLP, QNetwork, orthogonal


@pytest.mark.parametrize("shape", [(64, 64), (5, 32), (32, 5), (3, 4, 6)])
@pytest.mark.parametrize("column_axis", [-1, 0])
def test_orthogonal_equals_jax_nn_initializer(shape, column_axis):
    ours = orthogonal(1.3, column_axis)(jax.random.key(3), shape)
    ref = jax.nn.initializers.orthogonal(1.3, column_axis)(jax.random.key(3), shape, jnp.float32)
    np.testing.assert_allclose(ours, ref, atol=2e-6)
    flat = np.moveaxis(np.asarray(ours), column_axis, -1).reshape(-1, shape[column_axis]) / 1.3
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(gram, np.eye(len(gram)), atol=2e-6)


def test_orthogonal_rejects_vectors():
    with pytest.raises(ValueError, match="shape=\\(4,\\)"):
        orthogonal()(jax.random.key(0), (4,))


@pytest.mark.parametrize(
    "net", [MLP((64, 64, 64), 8), QNetwork((16,), 5, recurrent_units=4)], ids=["mlp", "lstm_q"]
)
def test_seed_vmapped_init_has_no_lapack_call(net):
    init = jax.vmap(lambda k: net.init(k, jnp.zeros((1, 7))))
    hlo = jax.jit(init).lower(jax.random.split(jax.random.key(0), 4)).as_text()
    assert "lapack" not in hlo.lower()
    params = jax.jit(init)(jax.random.split(jax.random.key(0), 4))
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))
