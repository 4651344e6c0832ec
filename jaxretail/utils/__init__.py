"""Small shared utilities (atomic file writes)."""

from jaxretail.utils.atomic import atomic_path, atomic_write_bytes, atomic_write_text

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]
