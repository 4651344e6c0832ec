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
