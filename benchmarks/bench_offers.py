"""Throughput of the offer system: feature build on all of Complete Journey, DQN training and scoring
on 1,000,000 samples, each beside a reference timed in the same run.

- feature build: :func:`jaxretail.data.offers.build_offer_dataset` on the whole 84.51 Complete Journey
  (1.47 M lines -> 3.6 M samples with negatives), against loading the raw table alone;
- scoring: the paper's Q-network (15 -> 256-128-64-32 -> 5) on N samples, jitted, against the same
  forward pass in NumPy; the paper's metrics (:func:`classification_report`) on N samples, against
  scikit-learn computing macro F1, OvR AUC and the confusion matrix;
- training: the paper's DQN preset on the offer environment over N samples (8 streams, batch 64),
  compile excluded, in replay samples/s and env transitions/s; reference: scikit-learn
  ``HistGradientBoostingClassifier`` fit on 100,000 rows (1 thread), in rows/s.

    python benchmarks/bench_offers.py                     # N = 1,000,000
    python benchmarks/bench_offers.py --samples 100000 --updates 500 --skip-cj
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_jit, time_python  # noqa: E402

from jaxretail.agents import dqn  # noqa: E402
from jaxretail.agents.training import make_train  # noqa: E402
from jaxretail.core import spaces  # noqa: E402
from jaxretail.core.vector import batched  # noqa: E402
from jaxretail.envs.offers import OfferEnv, classification_report, make_params  # noqa: E402
from jaxretail.jobs import offers as op  # noqa: E402
from jaxretail.utils import atomic_write_text  # noqa: E402


def numpy_forward(params, x):
    layers = params["params"]
    names = sorted(layers, key=lambda k: int(k.split("_")[1]))
    for i, name in enumerate(names):
        x = x @ np.asarray(layers[name]["kernel"]) + np.asarray(layers[name]["bias"])
        if i < len(names) - 1:
            x = np.maximum(x, 0.0)
    return x


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--updates", type=int, default=2_000)
    p.add_argument("--skip-cj", action="store_true")
    p.add_argument("--out", default="results/bench_offers")
    args = p.parse_args(argv)
    n = args.samples
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 15)).astype(np.float32)
    y = rng.integers(0, 5, n).astype(np.int32)
    res = {"samples": n, "load_average": os.getloadavg(), "cpu": platform.processor(), "jax": jax.__version__,
           "device": str(jax.devices()[0])}  # fmt: skip

    if not args.skip_cj:
        from jaxretail.data.offers import build_offer_dataset, load_completejourney

        t_load = time_python(load_completejourney, repeats=1)
        start = time.perf_counter()
        df = build_offer_dataset("completejourney", progress=False)
        t_build = time.perf_counter() - start
        res["cj"] = {"load_s": t_load, "build_s": t_build, "rows": len(df),
                     "rows_per_s": len(df) / t_build, "ratio_to_load": t_build / t_load}  # fmt: skip
        del df
        print(
            f"Complete Journey: load {t_load:.1f} s, full build {t_build:.1f} s "
            f"-> {res['cj']['rows']:,} samples"
        )

    cfg = op.dqn_preset(args.updates)
    net = dqn.network(cfg, spaces.Discrete(5))
    params = net.init(jax.random.key(0), jnp.zeros((1, 15)))
    score = time_jit(lambda p_, x_: op.q_values(cfg, p_, x_), (params, jnp.asarray(x)), repeats=3)
    t_np = time_python(lambda: numpy_forward(params, x), repeats=3)
    res["scoring"] = {"samples_per_s": n / score.seconds, "numpy_samples_per_s": n / t_np,
                      "ratio": t_np / score.seconds, "compile_s": score.compile_s}  # fmt: skip
    print(f"scoring: {n / score.seconds:,.0f} samples/s (NumPy {n / t_np:,.0f}, x{t_np / score.seconds:.1f})")

    q = score.output
    met = time_jit(classification_report, (jnp.asarray(y), q), repeats=3)
    from sklearn import metrics as skm

    qn = np.asarray(q, np.float64)
    prob = np.exp(qn - qn.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    pred = qn.argmax(1)

    def sk():
        skm.f1_score(y, pred, average="macro")
        skm.confusion_matrix(y, pred)
        skm.roc_auc_score(y, prob, multi_class="ovr")

    t_sk = time_python(sk, repeats=1)
    res["metrics"] = {"samples_per_s": n / met.seconds, "sklearn_samples_per_s": n / t_sk,
                      "ratio": t_sk / met.seconds, "compile_s": met.compile_s}  # fmt: skip
    print(
        f"metrics: {n / met.seconds:,.0f} samples/s "
        f"(scikit-learn subset {n / t_sk:,.0f}, x{t_sk / met.seconds:.1f})"
    )

    env_params = make_params(x, y, episode_length=10)
    trainer = dqn.make_trainer(cfg, batched(OfferEnv(), env_params, 8))
    train = make_train(trainer)
    tr = time_jit(train, (jax.random.key(1),), repeats=1, warmup=1)
    steps_s = args.updates / tr.seconds
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    m = min(100_000, n)
    with threadpool_limits(1):
        t_hgb = time_python(
            lambda: HistGradientBoostingClassifier(max_iter=50, early_stopping=False).fit(x[:m], y[:m])
        )
    res["training"] = {"updates_per_s": steps_s, "replay_samples_per_s": steps_s * cfg.batch_size,
                       "env_transitions_per_s": steps_s * 8, "compile_s": tr.compile_s,
                       "hgb_rows_per_s_50_iters": m / t_hgb}  # fmt: skip
    print(f"training: {steps_s:,.0f} updates/s = {steps_s * cfg.batch_size:,.0f} replay samples/s, "
          f"{steps_s * 8:,.0f} transitions/s over {n:,} samples "
          f"(HGB fit {m / t_hgb:,.0f} rows/s)")  # fmt: skip
    out = Path(args.out)
    atomic_write_text(out / "bench_offers.json", json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
