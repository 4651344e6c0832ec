"""Offline data collection (Algorithm 1 of the coupon benchmark, Xia et al. arXiv 2405.10469 §3).

Each simulation draws its scenario from the seed, starts the coupon environment, and rolls a behaviour
policy (default: uniformly random coupon levels) for ``num_weeks`` weeks in one jitted scan. It records
context, action, action probability, reward and next context for every customer-week, writes them as
one Parquet part, and saves the final environment state with orbax, so evaluation can resume the
simulation exactly where collection stopped.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from tqdm import tqdm

import jaxretail
from jaxretail.core.rollout import scan_steps
from jaxretail.core.sharding import DeviceMap
from jaxretail.core.validation import SEED_MAX, check_choice, check_int
from jaxretail.data import dataset as ds
from jaxretail.envs.coupon import get_config, sample_scenario
from jaxretail.envs.coupon.configs import CONFIGS
from jaxretail.envs.coupon.env import CouponEnv, CouponParams, make_params
from jaxretail.envs.coupon.modes import MODES, mode_settings
from jaxretail.utils.rundir import claim_output


@dataclass(frozen=True)
class CollectionConfig:
    """What to collect. ``num_simulations x customers_per_simulation`` customers in all."""

    scenario: str = "benchmark"
    num_simulations: int = 10
    customers_per_simulation: int = 10_000
    num_weeks: int = 50
    seed: int = 0
    base_prices: str = "paper"
    block_size: int | None = None  # visitors per streamed block (None: the backend's default)
    mode: str = "clean"  # "clean" | "paper" (jaxretail.envs.coupon.modes); paper forces paper base prices
    # products per category instead of the configuration's catalogue (small runs and tests); needs drawn
    # base prices, since the paper's prices exist only for its 2,514-product catalogue
    category_sizes: tuple[int, ...] | None = None

    def __post_init__(self):
        for name in ("num_simulations", "customers_per_simulation", "num_weeks", "block_size"):
            if name != "block_size" or self.block_size is not None:
                check_int(name, getattr(self, name), 1, owner="CollectionConfig")
        check_int("seed", self.seed, 0, SEED_MAX, owner="CollectionConfig")
        check_choice("scenario", self.scenario, tuple(CONFIGS), owner="CollectionConfig")
        check_choice("base_prices", self.base_prices, ("paper", "draw"), owner="CollectionConfig")
        check_choice("mode", self.mode, MODES, owner="CollectionConfig")
        m = mode_settings(self.mode, None if self.mode == "paper" else self.base_prices)
        if self.category_sizes is not None:
            object.__setattr__(self, "category_sizes", tuple(self.category_sizes))
            get_config(self.scenario, category_sizes=self.category_sizes)  # its own clear errors
            if m.base_prices != "draw":
                raise ValueError(
                    "CollectionConfig.category_sizes needs base_prices='draw' and mode='clean' (the "
                    "paper's prices exist only for its catalogue), got "
                    f"base_prices={m.base_prices!r}, mode={self.mode!r}"
                )


def _scenario_config(cfg: CollectionConfig):
    sizes = {} if cfg.category_sizes is None else {"category_sizes": cfg.category_sizes}
    return get_config(cfg.scenario, **sizes)


def simulation_params(cfg: CollectionConfig, simulation: int) -> CouponParams:
    """The environment parameters of one simulation (deterministic in the seed and the index)."""
    scenario_cfg = _scenario_config(cfg)
    key = jax.random.fold_in(jax.random.key(cfg.seed), simulation)
    m = mode_settings(cfg.mode, None if cfg.mode == "paper" else cfg.base_prices)
    scenario = sample_scenario(
        key,
        scenario_cfg,
        cfg.customers_per_simulation,
        legacy_coupling=m.legacy_coupling,
        base_prices=m.base_prices,
    )
    return make_params(
        scenario,
        scenario_cfg,
        block_size=cfg.block_size,
        legacy_coupling=m.legacy_coupling,
        next_week_price_quirk=m.next_week_price_quirk,
        utility_clip=m.utility_clip,
    )


def uniform_behaviour(key, obs, state, params):
    """Uniformly random coupon level per customer; returns ``(action [U], probability [U])``."""
    levels = len(params.config.coupon_levels)
    action = jax.random.randint(key, (obs.shape[0],), 0, levels, jnp.int32)
    return action, jnp.full((obs.shape[0],), 1.0 / levels, jnp.float32)


def rollout_logged(env, params, key, obs, state, num_weeks, behaviour=uniform_behaviour):
    """Run ``behaviour`` for ``num_weeks`` weeks from ``(obs, state)``; returns the final ``(obs, state)``
    and the logged ``context, action, action_prob, reward, next_context`` (leading ``[T, U]``).

    ``behaviour(key, obs, state, params) -> (action [U], probability [U])``; the logged probability is
    recomputed from the same key and context after the scan, so it may depend on ``key``, ``obs`` and
    ``params`` but not on ``state`` (true of context-based logging policies)."""

    def policy(k, o, s, p):
        return behaviour(k, o, s, p)[0]

    def record(tr):
        return {"context": tr.obs, "action": tr.action, "reward": tr.reward}

    final_obs, final_state, rec = scan_steps(env, policy, key, params, obs, state, num_weeks, record=record)
    # the behaviour probability of the logged action (recomputed from the same key stream)
    probs = jax.vmap(
        lambda t, o: behaviour(jax.random.fold_in(jax.random.fold_in(key, t), 0), o, None, params)[1]
    )(jnp.arange(num_weeks), rec["context"])
    rec["action_prob"] = probs
    rec["next_context"] = jnp.concatenate([rec["context"][1:], final_obs[None]], axis=0)
    return final_obs, final_state, rec


def _flatten(rec, simulation: int) -> dict[str, np.ndarray]:
    weeks, customers = rec["reward"].shape
    week_idx, cust_idx = np.meshgrid(np.arange(weeks), np.arange(customers), indexing="ij")
    flat = {k: np.asarray(v).reshape(weeks * customers, *np.shape(v)[2:]) for k, v in rec.items()}
    flat.update(
        simulation=np.full(weeks * customers, simulation), customer=cust_idx.ravel(), week=week_idx.ravel()
    )
    return flat


def metadata(cfg: CollectionConfig) -> dict:
    return {
        "collection": cfg.__dict__,
        "behaviour": "uniform",
        "versions": {
            "jaxretail": jaxretail.__version__,
            "jax": jax.__version__,
            "pyarrow": ds.pa.__version__,
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def identity(cfg: CollectionConfig) -> dict:
    """What determines a dataset's data: the collection config and the behaviour policy."""
    collection = dict(cfg.__dict__)
    if collection["category_sizes"] is None:  # datasets written before the override existed stay valid
        del collection["category_sizes"]
    return {"collection": collection, "behaviour": "uniform"}


def _stored_identity(out: Path) -> dict | None:
    """The identity recorded by a dataset written before ``_run.json`` existed (manifest or a part)."""
    if (out / ds.MANIFEST).exists():
        meta = ds.read_manifest(out)["metadata"]
    else:
        parts = sorted(out.glob("part-*.parquet"))
        if not parts:
            return None
        raw = ds.pq.read_schema(parts[0]).metadata or {}
        meta = json.loads(raw.get(b"jaxretail", b"null"))
        if meta is None:
            return None
    return {"collection": meta["collection"], "behaviour": meta.get("behaviour")}


def collect(
    out: str | Path,
    cfg: CollectionConfig,
    *,
    overwrite: bool = False,
    progress: bool = True,
    devices=None,
) -> dict:
    """Collect every simulation into ``out`` (resuming an interrupted run); returns the manifest.

    Simulations whose Parquet part and saved state both exist are kept; anything half-written for a
    simulation (an orbax temporary folder included) is redone. A folder holding a dataset of another
    config is refused (its manifest is never rewritten to claim new settings) unless
    ``overwrite=True``, which deletes it first and restarts from scratch; a folder another live
    collection is writing is refused too (:mod:`jaxretail.utils.rundir`).

    Simulations run one per device at a time (``devices``, default every local device: on a CPU, one
    per core when the process sets ``--xla_force_host_platform_device_count``, as the scripts do), in
    one compiled program (:class:`~jaxretail.core.sharding.DeviceMap`); the data do not depend on the
    number of devices.

    Raises:
      OutputFolderError: ``out`` holds a different dataset or another live run is writing it.
    """
    hint = "pass overwrite=True (--overwrite) to collect it again, or choose another folder"
    with claim_output(out, identity(cfg), overwrite=overwrite, existing=_stored_identity, hint=hint):
        return _collect(Path(out), cfg, progress, devices)


def _collect(out: Path, cfg: CollectionConfig, progress: bool, devices) -> dict:
    meta = metadata(cfg)
    env = CouponEnv()

    def run(_, sim, index):
        params, key = sim
        obs, state = env.reset(key, params)
        _, final_state, rec = rollout_logged(env, params, key, obs, state, cfg.num_weeks)
        return final_state, rec

    spread = DeviceMap(run, devices)
    parts = {}
    todo = []
    for sim in range(cfg.num_simulations):
        part, state_dir = ds.part_path(out, sim), ds.state_path(out, sim)
        if part.exists() and (state_dir / "commit_success.txt").exists():
            parts[sim] = ds.pq.read_metadata(part).num_rows
        else:
            todo.append(sim)
    bar = tqdm(
        total=cfg.num_simulations, initial=len(parts), desc="collecting", unit="sim", disable=not progress
    )
    # one simulation per device at a time; the next round is dispatched before this one is written
    rounds = [todo[i : i + len(spread.devices)] for i in range(0, len(todo), len(spread.devices))]

    def dispatch(sims):
        key = jax.random.key(cfg.seed + 1)
        return spread.dispatch(None, [(simulation_params(cfg, s), jax.random.fold_in(key, s)) for s in sims])

    pending = dispatch(rounds[0]) if rounds else None
    with ocp.StandardCheckpointer() as ckpt:  # one checkpointer: its saves finish in the background
        for index, sims in enumerate(rounds):
            done = spread.collect(pending)
            pending = dispatch(rounds[index + 1]) if index + 1 < len(rounds) else None
            for sim, (final_state, rec) in zip(sims, done, strict=True):
                parts[sim] = _write_simulation(out, sim, final_state, rec, meta, ckpt)
                bar.update()
    bar.close()
    ds.write_manifest(out, meta, parts)
    return ds.read_manifest(out)


def _write_simulation(out: Path, sim: int, final_state, rec, meta, ckpt) -> int:
    """Start saving one simulation's final state (orbax, committed in the background) and write its
    logged part (Parquet); returns its row count. A simulation counts as collected only once both
    exist, so an interrupted save is redone on resume."""
    state_dir = ds.state_path(out, sim)
    if state_dir.exists():
        shutil.rmtree(state_dir)
    for tmp in out.glob(f"{state_dir.name}.orbax-checkpoint-tmp*"):
        shutil.rmtree(tmp, ignore_errors=True)
    ckpt.save(state_dir.absolute(), final_state)  # NumPy leaves: no transfer waiting on a busy device
    table = ds.columns_to_table(_flatten(rec, sim))
    ds.write_part(out, sim, table, meta)
    return table.num_rows


def load_state(out: str | Path, cfg: CollectionConfig, simulation: int):
    """``(params, state)`` of a collected simulation, restored exactly as collection left it."""
    params = simulation_params(cfg, simulation)
    abstract = jax.eval_shape(lambda: CouponEnv().reset(jax.random.key(0), params)[1])
    with ocp.StandardCheckpointer() as ckpt:
        state = ckpt.restore(ds.state_path(out, simulation).absolute(), abstract)
    return params, state
