"""Retail environments: one package per system."""
