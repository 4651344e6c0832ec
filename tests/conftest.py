import os
import tempfile
from pathlib import Path

# One XLA compilation cache for the whole test session, its xdist workers and the subprocesses tests
# start (README blocks, CLIs): tests build the same environments many times over, and compiling them
# is most of the suite's time on a small CPU. Set before JAX compiles anything; a user's own setting wins.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", str(Path(tempfile.gettempdir()) / "jaxretail-tests-xla-cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# Tests run tiny sizes, so XLA's time goes to compiling, not running: skip the expensive LLVM passes
# (about a third less CPU for the coupon tests), emit loop fusions with XLA's elemental emitters
# instead of its MLIR fusion emitters (another 35-55 % less compile CPU for a coupon scan or a PPO
# trainer, measured side by side; same results) and schedule without the concurrency-optimised
# scheduler (a further ~7 %). Numerics are unchanged in kind (float32, same HLO);
# JAXRETAIL_TEST_FULL_OPT=1 keeps XLA's defaults.
if os.environ.get("JAXRETAIL_TEST_FULL_OPT") != "1":
    os.environ["XLA_FLAGS"] = " ".join((
        os.environ.get("XLA_FLAGS", ""),
        "--xla_backend_optimization_level=0",
        "--xla_llvm_disable_expensive_passes=true",
        "--xla_cpu_use_fusion_emitters=false",
        "--xla_cpu_enable_concurrency_optimized_scheduler=false",
    )).strip()  # fmt: skip

import jax
import pytest

from jaxretail.envs.assortment import DynamicAssortment


@pytest.fixture(scope="session")
def env():
    return DynamicAssortment()


@pytest.fixture(scope="session")
def params(env):
    return env.default_params


@pytest.fixture
def key():
    return jax.random.key(0)


# Modules whose tests run for tens of seconds (end-to-end jobs, subprocesses, trainers) start first:
# xdist's worksteal hands each worker a contiguous half of the collection and an idle worker steals
# from the tail of the other's queue, so with the long tests at the head the run ends on short tests
# on both workers instead of one worker finishing a long test alone. test_sharding leads because its
# module-scoped forced-device process serves all of its checks: started first, none of them is
# stolen by the other worker (which would start that process a second time).
SLOW_FIRST = (
    "test_sharding.py",
    "test_pricing_job.py",
    "test_interop_trainers.py",
    "test_readme.py",
    "test_bench_suite.py",
    "test_coupon_protocol.py",
    "test_coupon_metrics.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))  # stable: file order kept
