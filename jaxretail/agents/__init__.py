"""Agents that learn in jaxretail environments."""
