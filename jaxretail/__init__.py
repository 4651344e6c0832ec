"""jaxretail: JAX-native retail decision simulators and the agents that learn in them.

Floors, imports pointing down: ``jobs`` (main jobs) > ``evaluation`` (shared by every system) > ``data`` >
``envs`` | ``agents`` > ``core`` | ``choice`` | ``utils``.
"""

from jaxretail import choice, core, envs
from jaxretail.registry import make, register_gymnax

__version__ = "0.1.0"
__all__ = ["__version__", "choice", "core", "envs", "make", "register_gymnax"]
