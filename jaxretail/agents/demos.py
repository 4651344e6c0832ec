"""Learning from demonstrations: n-step items, the large-margin loss and a prioritised mixture of
demonstration and agent replay (DQfD, Hester et al. arXiv 1704.03732; DDPGfD, Vecerik et al.
arXiv 1707.08817), built on flashbax's prioritised item buffer.

* An **item** (:class:`Item`) is one transition with both its 1-step and its n-step target
  ingredients. The n-step return is kept as the raw window of rewards, so the discount ``gamma``
  stays a (vmappable) hyperparameter: ``G = sum_{k<m} gamma^k r_{t+k}`` and the target is
  ``G + gamma^m bootstrap Q(s_{t+m})`` with ``m <= n`` cut at the first episode end.
* :func:`nstep_items` builds items from logged trajectories ``[T, B]`` (the demonstrations).
  Agent transitions collected online enter as 1-step items (their n-step window is the single step).
* :class:`MixtureReplay`: demonstrations live permanently in their own prioritised buffer (sized
  to hold them all, never overwritten) and the agent's transitions in a second one; a batch element
  comes from the demonstrations with probability ``S_demo / (S_demo + S_agent)`` (``S`` = the
  buffers' total priority mass), so sampling follows the joint prioritised distribution
  ``P(i) = p_i^alpha / sum_j p_j^alpha`` over both. New priorities are ``|delta| + eps`` plus the
  demonstration bonus ``eps_d`` for demonstrations. Importance weights ``(N P(i))^{-beta}`` are
  normalised by their batch maximum.
"""

from __future__ import annotations

from typing import Any

import flashbax as fbx
import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Item:
    """One transition (leading axes added by batching)."""

    obs: jax.Array  # [*obs_shape]
    action: jax.Array  # [] int or [action_dim] float
    reward: jax.Array  # [] r_t
    next_obs: jax.Array  # [*obs_shape] observation that ended step t (before any reset)
    discount: jax.Array  # [] 1 - terminated_t
    rewards_n: jax.Array  # [n] r_t .. r_{t+n-1}, zero after the window's end
    nstep_obs: jax.Array  # [*obs_shape] s_{t+m}
    nstep_len: jax.Array  # [] m in 1..n
    nstep_discount: jax.Array  # [] 1 if the window did not end in a termination
    is_demo: jax.Array  # [] 1.0 for demonstrations


def nstep_return(item: Item, gamma) -> jax.Array:
    """``sum_k gamma^k r_{t+k}`` over the window (batched items: ``[B]``)."""
    n = item.rewards_n.shape[-1]
    return jnp.sum(item.rewards_n * gamma ** jnp.arange(n, dtype=item.rewards_n.dtype), axis=-1)


def nstep_items(obs, action, reward, terminated, truncated, final_obs, n: int, is_demo: bool = True) -> Item:
    """Items ``[T * B]`` from logged trajectories with leading axes ``[T, B]``.

    ``final_obs[t]`` is the observation that ended step ``t`` (``info["final_observation"]``);
    an episode ends at ``terminated | truncated``; the end of the log acts as a truncation.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be an integer >= 1, got n={n!r}")
    T = reward.shape[0]
    term = terminated.astype(bool)
    done = term | truncated.astype(bool)
    t = jnp.arange(T)
    rewards, alive = [], jnp.ones(reward.shape, bool)
    end = jnp.zeros(reward.shape, jnp.int32)
    for k in range(n):
        idx = jnp.minimum(t + k, T - 1)
        inside = (t + k <= T - 1)[:, None] & alive
        rewards.append(jnp.where(inside, reward[idx], 0.0))
        end = jnp.where(inside, idx[:, None], end)
        alive = inside & ~done[idx]
    ends_in_term = jnp.take_along_axis(term, end, axis=0)
    take = lambda x: jnp.take_along_axis(x, end.reshape(end.shape + (1,) * (x.ndim - 2)), axis=0)
    items = Item(
        obs=obs,
        action=action,
        reward=reward,
        next_obs=final_obs,
        discount=1.0 - term.astype(reward.dtype),
        rewards_n=jnp.stack(rewards, axis=-1),
        nstep_obs=take(final_obs),
        nstep_len=(end - t[:, None] + 1).astype(reward.dtype),
        nstep_discount=1.0 - ends_in_term.astype(reward.dtype),
        is_demo=jnp.full(reward.shape, float(is_demo), reward.dtype),
    )
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), items)


def one_step_items(obs, action, reward, next_obs, terminated, n: int) -> Item:
    """Agent transitions ``[B]`` as items whose n-step window is the single step."""
    disc = 1.0 - terminated.astype(reward.dtype)
    rewards_n = jnp.zeros(reward.shape + (n,), reward.dtype).at[..., 0].set(reward)
    ones = jnp.ones_like(reward)
    return Item(obs, action, reward, next_obs, disc, rewards_n, next_obs, ones, disc, jnp.zeros_like(reward))


def large_margin_loss(q: jax.Array, expert_action: jax.Array, margin: float) -> jax.Array:
    """DQfD's supervised loss ``max_a [Q(s, a) + l(a_E, a)] - Q(s, a_E)`` with ``l = margin`` for
    ``a != a_E`` and 0 otherwise. ``q``: ``[B, K]``; ``expert_action``: ``[B]`` int. Returns ``[B]``."""
    k = q.shape[-1]
    onehot = jax.nn.one_hot(expert_action, k, dtype=q.dtype)
    q_e = jnp.sum(q * onehot, axis=-1)
    return jnp.max(q + margin * (1.0 - onehot), axis=-1) - q_e


@struct.dataclass
class MixtureState:
    demo: Any  # flashbax prioritised buffer state holding every demonstration
    agent: Any  # flashbax prioritised buffer state of agent items


class MixtureReplay:
    """Two flashbax prioritised item buffers sampled as one (see the module docstring)."""

    def __init__(self, num_demos: int, agent_capacity: int, batch_size: int, add_batch: int, alpha: float):
        self.num_demos, self.batch_size, self.alpha = int(num_demos), int(batch_size), float(alpha)
        kw = dict(min_length=1, sample_batch_size=batch_size, priority_exponent=alpha)
        self.demo_buf = fbx.make_prioritised_item_buffer(
            max_length=max(num_demos, batch_size), add_sequences=True, **kw
        )
        self.agent_buf = fbx.make_prioritised_item_buffer(
            max_length=max(agent_capacity, add_batch, batch_size), add_sequences=True, **kw
        )

    def init(self, demos: Item, example: Item) -> MixtureState:
        demo = self.demo_buf.init(jax.tree.map(lambda x: x[0], example))
        if self.num_demos:
            demo = self.demo_buf.add(demo, demos)
        return MixtureState(demo, self.agent_buf.init(jax.tree.map(lambda x: x[0], example)))

    def add(self, state: MixtureState, items: Item) -> MixtureState:
        return state.replace(agent=self.agent_buf.add(state.agent, items))

    @staticmethod
    def _mass(buf_state) -> jax.Array:
        return buf_state.sum_tree_state.nodes[0]

    def sample(self, state: MixtureState, key, use_agent, use_demo, beta):
        """``(items [B], weights [B], from_demo [B], (demo_idx, agent_idx))``."""
        k_d, k_a, k_mix = jax.random.split(key, 3)
        s_d = jnp.where(use_demo & (self.num_demos > 0), self._mass(state.demo), 0.0)
        s_a = jnp.where(use_agent, self._mass(state.agent), 0.0)
        share = s_d / jnp.maximum(s_d + s_a, 1e-12)
        d = self.demo_buf.sample(state.demo, k_d)
        a = self.agent_buf.sample(state.agent, k_a)
        from_demo = jax.random.uniform(k_mix, (self.batch_size,)) < share
        pick = lambda x, y: jnp.where(from_demo.reshape((-1,) + (1,) * (x.ndim - 1)), x, y)
        items = jax.tree.map(pick, d.experience, a.experience)
        # joint probability P(i) = p_i^alpha / (S_d + S_a) = prob_in_buffer * S_buffer / (S_d + S_a)
        total = jnp.maximum(s_d + s_a, 1e-12)
        prob = jnp.where(from_demo, d.probabilities * s_d, a.probabilities * s_a) / total
        size = jnp.where(use_demo, self.num_demos, 0) + jnp.where(use_agent, self._count(state.agent), 0)
        w = (jnp.maximum(size, 1) * jnp.maximum(prob, 1e-12)) ** (-beta)
        return items, w / jnp.max(w), from_demo, (d.indices, a.indices)

    @staticmethod
    def _count(buf_state) -> jax.Array:
        """Stored items (the item buffer keeps them on its time axis)."""
        cap = buf_state.experience.reward.shape[1]
        return jnp.where(buf_state.is_full, cap, buf_state.current_index)

    def update_priorities(self, state, indices, td_demo, td_agent, use_agent, eps, eps_demo):
        """Set ``|delta| + eps (+ eps_demo)`` for the demonstration and agent samples."""
        # in flashbax's own float dtype (float64 under JAX_ENABLE_X64), so the cond's branches agree
        dtype = state.agent.sum_tree_state.max_recorded_priority.dtype
        p_demo = (jnp.abs(td_demo) + eps + eps_demo).astype(dtype)
        demo = self.demo_buf.set_priorities(state.demo, indices[0], p_demo)
        agent = jax.lax.cond(
            use_agent,
            lambda s: self.agent_buf.set_priorities(s, indices[1], (jnp.abs(td_agent) + eps).astype(dtype)),
            lambda s: s,
            state.agent,
        )
        return MixtureState(demo if self.num_demos else state.demo, agent)


@struct.dataclass
class ReplayAgentState:
    """Runner state of :func:`make_replay_trainer`."""

    agent: Any  # learner pytree (params, targets, optimiser states, step counters)
    replay: MixtureState
    env_state: Any
    obs: jax.Array  # [E, *obs_shape]
    explore: Any  # exploration state (e.g. OU noise [E, action_dim])
    key: jax.Array
    hyper: Any
    updates: jax.Array  # [] int32
    episode_return: jax.Array  # [E]


def make_replay_trainer(venv, cfg, hooks, example_action):
    """The shared loop of DQfD and DDPG(fD) as a :class:`~jaxretail.agents.training.Trainer`.

    Each update: after ``cfg.pretrain_updates`` pre-training updates (demonstrations only, no
    environment steps), take ``cfg.num_steps`` exploring steps of ``venv`` and store them as 1-step
    items; then ``cfg.gradient_steps`` prioritised gradient steps on the demonstration + agent
    mixture (agent items once ``cfg.learning_starts`` are stored). ``data`` of ``update`` is the
    demonstration :class:`Item` batch ``[num_demos]`` (``None`` without demonstrations); it is
    written to its buffer on the first update.

    ``hooks`` provides ``init(key, hyper, obs_shape) -> agent``, ``act(agent, key, obs, explore,
    hyper, update) -> (action, explore)``, ``explore_init(num_envs)``, ``explore_reset(explore,
    done)`` and ``learn(agent, items, weights, hyper) -> (agent, td [B], metrics)``.
    """
    from jaxretail.agents.training import Trainer

    n, E = cfg.n_step, venv.num_envs
    replay = MixtureReplay(cfg.num_demos, cfg.buffer_size, cfg.batch_size, E, cfg.priority_exponent)
    zeros_obs = jnp.zeros((E,) + tuple(venv.obs_shape), jnp.float32)
    example = one_step_items(
        zeros_obs,
        jnp.zeros((E,) + jnp.shape(example_action), jnp.asarray(example_action).dtype),
        jnp.zeros(E, jnp.float32),
        zeros_obs,
        jnp.zeros(E, bool),
        n,
    )

    def init(key, hyper=None):
        hyper = cfg.hyper if hyper is None else hyper
        hyper = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hyper)
        k_env, k_agent, key = jax.random.split(key, 3)
        obs, env_state = venv.reset(k_env)
        agent = hooks.init(k_agent, hyper, venv.obs_shape)
        zero = jnp.asarray(0, jnp.int32)
        buf = MixtureState(
            replay.demo_buf.init(jax.tree.map(lambda x: x[0], example)),
            replay.agent_buf.init(jax.tree.map(lambda x: x[0], example)),
        )
        return ReplayAgentState(
            agent, buf, env_state, obs, hooks.explore_init(E), key, hyper, zero, jnp.zeros(E, jnp.float32)
        )

    def collect(state):
        def env_step(carry, _):
            buf, env_state, obs, explore, ep_ret, stats, key = carry
            key, k_act, k_env = jax.random.split(key, 3)
            action, explore = hooks.act(state.agent, k_act, obs, explore, state.hyper, state.updates)
            out, env_state = venv.step(k_env, env_state, action)
            items = one_step_items(obs, action, out.reward, out.final_obs, out.terminated, n)
            buf = replay.add(buf, items)
            done = out.terminated | out.truncated
            ep_ret = ep_ret + out.reward
            stats = stats + jnp.stack(
                [jnp.sum(jnp.where(done, ep_ret, 0.0)), jnp.sum(done), jnp.mean(out.reward)]
            )
            carry = (
                buf,
                env_state,
                out.obs,
                hooks.explore_reset(explore, done),
                jnp.where(done, 0.0, ep_ret),
                stats,
                key,
            )
            return carry, None

        key, k = jax.random.split(state.key)
        carry = (
            state.replay,
            state.env_state,
            state.obs,
            state.explore,
            state.episode_return,
            jnp.zeros(3, jnp.float32),
            k,
        )
        (buf, env_state, obs, explore, ep_ret, stats, _), _ = jax.lax.scan(
            env_step, carry, None, cfg.num_steps
        )
        new = state.replace(
            replay=buf, env_state=env_state, obs=obs, explore=explore, episode_return=ep_ret, key=key
        )
        return new, stats

    def update(state: ReplayAgentState, data=None):
        if data is not None and cfg.num_demos:
            state = jax.lax.cond(
                state.updates == 0,
                lambda s: s.replace(replay=s.replay.replace(demo=replay.demo_buf.add(s.replay.demo, data))),
                lambda s: s,
                state,
            )
        online = state.updates >= cfg.pretrain_updates
        state, stats = jax.lax.cond(online, collect, lambda s: (s, jnp.zeros(3, jnp.float32)), state)
        use_agent = online & (MixtureReplay._count(state.replay.agent) >= max(cfg.learning_starts, 1))
        use_demo = jnp.asarray(cfg.num_demos > 0 and data is not None)
        can_learn = use_agent | use_demo

        def grad_step(state, _):
            key, k = jax.random.split(state.key)
            items, w, from_demo, idx = replay.sample(state.replay, k, use_agent, use_demo, state.hyper.beta)
            items = items.replace(is_demo=from_demo.astype(jnp.float32))
            agent, td, info = hooks.learn(state.agent, items, w, state.hyper)
            buf = replay.update_priorities(
                state.replay,
                idx,
                jnp.where(from_demo, td, 0.0),
                jnp.where(from_demo, 0.0, td),
                use_agent,
                state.hyper.priority_eps,
                state.hyper.demo_bonus,
            )
            return state.replace(agent=agent, replay=buf, key=key), info

        def learn(state):
            return jax.lax.scan(grad_step, state, None, cfg.gradient_steps)

        def skip(state):
            info = jax.eval_shape(lambda s: learn(s)[1], state)
            return state, jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), info)

        state, info = jax.lax.cond(can_learn, learn, skip, state)
        info = jax.tree.map(jnp.mean, info)
        info.update(
            mean_reward=stats[2] / cfg.num_steps,
            episode_return=stats[0] / jnp.maximum(stats[1], 1.0),
            episodes=stats[1],
            online=online,
        )
        return state.replace(updates=state.updates + 1), info

    return Trainer(init, update, cfg.num_updates)
