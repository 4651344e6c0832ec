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
