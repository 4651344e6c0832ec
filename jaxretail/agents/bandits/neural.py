"""Neural Boltzmann bandit: an MLP predicts every arm's reward; actions are drawn from
``softmax(r_hat / temperature)`` (the ``NeuralBoltzmannAgent`` of the coupon benchmark, Xia et al.
arXiv 2405.10469: ReLU hidden layers (8, 2), squared error on the logged arm, Adam).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxretail.core.validation import ConfigError, check_int, check_number, check_sizes


class RewardNetwork(nn.Module):
    """MLP ``[d] -> [K]`` predicted rewards, ReLU hidden layers."""

    hidden: Sequence[int]
    num_arms: int

    @nn.compact
    def __call__(self, x):
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.num_arms)(x)


@struct.dataclass
class NeuralBanditState:
    params: dict
    opt_state: optax.OptState
    network: RewardNetwork = struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = struct.field(pytree_node=False)


def init(
    key: jax.Array, dim: int, num_arms: int, hidden: Sequence[int] = (8, 2), learning_rate: float = 0.025
) -> NeuralBanditState:
    """Network parameters (Glorot init) and an Adam optimiser state."""
    dim = check_int("dim", dim, 1)
    num_arms = check_int("num_arms", num_arms, 1)
    hidden = check_sizes("hidden", hidden)
    check_number("learning_rate", learning_rate, low=0.0, low_open=True)
    network = RewardNetwork(tuple(hidden), num_arms)
    params = network.init(key, jnp.zeros((1, dim)))
    optimizer = optax.adam(learning_rate)
    return NeuralBanditState(params, optimizer.init(params), network, optimizer)


def predict(state: NeuralBanditState, contexts: jax.Array) -> jax.Array:
    """Predicted rewards ``[n, K]``."""
    return state.network.apply(state.params, contexts)


def loss(params, network, contexts, actions, rewards) -> jax.Array:
    """Mean squared error of the logged arm's prediction."""
    pred = network.apply(params, contexts)
    return jnp.mean((jnp.take_along_axis(pred, actions[:, None], axis=1)[:, 0] - rewards) ** 2)


def update(
    state: NeuralBanditState,
    key: jax.Array,
    contexts: jax.Array,
    actions: jax.Array,
    rewards: jax.Array,
    epochs: int = 1,
    batch_size: int = 1024,
) -> tuple[NeuralBanditState, jax.Array]:
    """Train on logged ``(x [n, d], a [n], r [n])``: ``epochs`` passes of shuffled minibatches.

    The last ``n mod batch_size`` samples of each shuffle are skipped. Returns the new state and the
    loss of every minibatch ``[epochs * (n // batch_size)]``.
    """
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    n = contexts.shape[0]
    steps = n // batch_size
    if steps < 1:
        raise ConfigError(f"batch_size must be <= the {n} samples, got batch_size={batch_size}")

    def sgd(carry, idx):
        params, opt_state = carry
        value, grads = jax.value_and_grad(loss)(
            params, state.network, contexts[idx], actions[idx], rewards[idx]
        )
        updates, opt_state = state.optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), value

    def epoch(carry, k):
        order = jax.random.permutation(k, n)[: steps * batch_size].reshape(steps, batch_size)
        return jax.lax.scan(sgd, carry, order)

    (params, opt_state), losses = jax.lax.scan(
        epoch, (state.params, state.opt_state), jax.random.split(key, epochs)
    )
    return state.replace(params=params, opt_state=opt_state), losses.reshape(-1)


def action_probabilities(state: NeuralBanditState, contexts: jax.Array, temperature: float) -> jax.Array:
    """Boltzmann policy ``softmax(r_hat / temperature)``, ``[n, K]``."""
    check_number("temperature", temperature, low=0.0, low_open=True)
    return jax.nn.softmax(predict(state, contexts) / temperature, axis=-1)


def act(key, state: NeuralBanditState, contexts: jax.Array, temperature: float) -> jax.Array:
    """Sample arms ``[n]`` from the Boltzmann policy."""
    check_number("temperature", temperature, low=0.0, low_open=True)
    return jax.random.categorical(key, predict(state, contexts) / temperature, axis=-1).astype(jnp.int32)
