"""Measurements: ``profile`` (parameters, MACs, FLOPs, bytes per layer)."""

from trimkit.measure._profile import LayerProfile, Profile, profile

__all__ = ["LayerProfile", "Profile", "profile"]
