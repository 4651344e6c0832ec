"""Retail environments: one package per system (``assortment``, ``coupon``, ``pricing``, ``offers``), each
with the same parts: ``types``, ``generator``, ``env``, ``policies`` (baselines), ``metrics`` and its
``protocol``. No environment imports an agent: protocols receive agents as callables."""
