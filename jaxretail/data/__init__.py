"""Offline data: collection under a behaviour policy, Parquet datasets, saved environment states."""
