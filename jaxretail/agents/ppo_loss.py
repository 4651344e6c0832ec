"""The PPO minibatch loss of :mod:`jaxretail.agents.ppo` and its gradient, over the whole minibatch or
accumulated over chunks of rows.

Per row ``i`` (a transition; Schulman et al. 2017, arXiv 1707.06347, eq. 7 and 9, with TF-Agents'
adaptive KL penalty):

    pg_i = -min(rho_i A_i, clip(rho_i, 1 - eps, 1 + eps) A_i),   v_i = (V(s_i) - G_i)^2 / 2,
    H_i = entropy of pi(.|s_i),   kl_i = (rho_i - 1) - log rho_i,   rho_i = pi(a_i|s_i) / mu(a_i|s_i),

and with means ``<.>`` over the minibatch

    loss = <pg> + vf_coef <v> - ent_coef <H> [+ beta <kl> + kl_cutoff_coef max(0, <kl> - cutoff)^2].

Every term but the cutoff is a mean of rows, so the gradient is a weighted sum of per-row gradients;
the cutoff term's gradient is ``2 kl_cutoff_coef max(0, <kl> - cutoff) grad <kl>``. :func:`chunked_grad`
therefore computes ``<kl>`` first (a forward pass) and then sums the per-row gradients chunk by chunk:
the same gradient as :func:`whole_grad` to float rounding, with the chunk's activations small enough
to stay in a CPU's cache (a full-batch update of 100,000 rows is memory-bound otherwise).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxretail.core.validation import check_int

TERMS = ("pg_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")


def row_terms(actor, critic, params, rows, clip_eps, clip_surrogate: bool) -> dict:
    """Per-row terms ``{name: [n]}`` (:data:`TERMS`) of flat ``rows = (obs [n, ...], action [n, ...],
    behaviour log-probability [n], advantage [n], return [n])``."""
    obs, action, logp_mu, adv, ret = rows
    dist = actor.apply(params["actor"], obs)
    log_ratio = dist.log_prob(action) - logp_mu
    ratio = jnp.exp(log_ratio)
    surrogate = ratio * adv
    if clip_surrogate:
        surrogate = jnp.minimum(surrogate, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv)
    value = critic.apply(params["critic"], obs)
    return {
        "pg_loss": -surrogate,
        "value_loss": 0.5 * (value - ret) ** 2,
        "entropy": dist.entropy(),
        "approx_kl": (ratio - 1.0) - log_ratio,
        "clip_fraction": (jnp.abs(ratio - 1.0) > clip_eps).astype(adv.dtype),
    }


def total_loss(config, hyper, beta, means: dict):
    """The minibatch loss from the means of :func:`row_terms` (see the module docstring)."""
    loss = means["pg_loss"] + hyper.vf_coef * means["value_loss"] - hyper.ent_coef * means["entropy"]
    if config.adaptive_kl:
        cutoff = config.kl_cutoff_factor * hyper.kl_target
        excess = jnp.maximum(means["approx_kl"] - cutoff, 0.0)
        loss = loss + beta * means["approx_kl"] + config.kl_cutoff_coef * excess**2
    return loss


def whole_grad(config, actor, critic, params, hyper, beta, rows) -> tuple:
    """``(gradient, info)`` of :func:`total_loss` over all ``rows`` at once; ``info`` holds the loss and
    the mean of every term."""

    def loss_fn(p):
        terms = row_terms(actor, critic, p, rows, hyper.clip_eps, config.clip_surrogate)
        means = {k: jnp.mean(v) for k, v in terms.items()}
        loss = total_loss(config, hyper, beta, means)
        return loss, {"loss": loss, **means}

    return jax.grad(loss_fn, has_aux=True)(params)


def chunked_grad(config, actor, critic, params, hyper, beta, rows, chunk: int) -> tuple:
    """:func:`whole_grad` accumulated over chunks of ``chunk`` rows (``lax.scan``; the last chunk is
    padded with copies of the last row, of weight 0: made-up rows could overflow a probability ratio).
    Equal to it to float rounding.

    Raises:
      ValueError: ``chunk`` is not a positive int.
    """
    chunk = check_int("chunk", chunk, 1)
    n = rows[0].shape[0]
    pad = -n % chunk
    dtype = rows[3].dtype
    weight = jnp.concatenate([jnp.full((n,), 1.0 / n, dtype), jnp.zeros((pad,), dtype)])
    edge = lambda x: jnp.concatenate([x, jnp.broadcast_to(x[-1:], (pad,) + x.shape[1:])])
    padded = jax.tree.map(edge, rows)
    chunks = jax.tree.map(lambda x: x.reshape((-1, chunk) + x.shape[1:]), (padded, weight))

    def sums(p, rows_c, w_c):
        terms = row_terms(actor, critic, p, rows_c, hyper.clip_eps, config.clip_surrogate)
        return {k: jnp.sum(w_c * v) for k, v in terms.items()}

    if config.adaptive_kl:  # <kl> first: the cutoff term's gradient is a multiple of grad <kl>
        kl = jax.lax.scan(
            lambda s, x: (s + sums(params, *x)["approx_kl"], None), jnp.zeros((), dtype), chunks
        )[0]
        cutoff = config.kl_cutoff_factor * hyper.kl_target
        kl_weight = beta + 2.0 * config.kl_cutoff_coef * jnp.maximum(kl - cutoff, 0.0)
    else:
        kl_weight = jnp.zeros((), dtype)

    def body(carry, x):
        def objective(p):
            s = sums(p, *x)
            mixed = s["pg_loss"] + hyper.vf_coef * s["value_loss"] - hyper.ent_coef * s["entropy"]
            return mixed + kl_weight * s["approx_kl"], s

        grads, s = jax.grad(objective, has_aux=True)(params)
        return jax.tree.map(jnp.add, carry, (grads, s)), None

    zeros = (jax.tree.map(jnp.zeros_like, params), {k: jnp.zeros((), dtype) for k in TERMS})
    grads, means = jax.lax.scan(body, zeros, chunks)[0]
    return grads, {"loss": total_loss(config, hyper, beta, means), **means}
