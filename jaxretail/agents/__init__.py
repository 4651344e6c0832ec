"""Agents that learn in jaxretail environments: pure ``make_train`` trainers and bandits. No agent imports
an environment: environments reach them as specs, vector envs or logged data."""
