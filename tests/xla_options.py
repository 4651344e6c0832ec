"""XLA options for the few tests whose time goes to running a compiled trainer, not to compiling it.

``conftest.py`` compiles every program at XLA's backend optimisation level 0 (no LLVM optimisation):
most tests are compile time. A trainer that then runs for seconds runs 3-4x slower at level 0, so its
``jax.jit`` takes ``compiler_options=TRAINER``: level 1 costs about half as much compile again and
saves more in running (rejax PPO over 4 seeds on the coupon view: 9.5 s compile + 19.8 s run at level
0, 14.1 s + 4.8 s at level 1). Results are the same programs' (same HLO, float32).
"""

import os

TRAINER = {} if os.environ.get("JAXRETAIL_TEST_FULL_OPT") == "1" else {"xla_backend_optimization_level": 1}
