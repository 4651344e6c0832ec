"""Environment core, the bottom floor: base class, spaces, scan rollouts, API adapters, summary statistics
(``stats``) and the offline protocols' agent interface (``offline.OfflineAgent``). Imports nothing else
of jaxretail."""

from jaxretail.core import spaces
from jaxretail.core.adapters import GymnasiumVectorEnv, LegacyStepAPI, make_gymnasium_vector_env
from jaxretail.core.environment import Environment, EnvParams, EnvState
from jaxretail.core.rollout import (
    Policy,
    Transition,
    apply_policy,
    episode_stream,
    record_reward,
    rollout,
    scan_steps,
)

__all__ = [
    "Environment",
    "EnvParams",
    "EnvState",
    "GymnasiumVectorEnv",
    "LegacyStepAPI",
    "Policy",
    "Transition",
    "apply_policy",
    "episode_stream",
    "make_gymnasium_vector_env",
    "record_reward",
    "rollout",
    "scan_steps",
    "spaces",
]
