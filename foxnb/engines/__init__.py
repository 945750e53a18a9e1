"""Engines turn a function of a cell into a callable: WaterFox (JIT), ThunderFox (AOT), Python."""

from __future__ import annotations

from foxnb.engines.base import Engine, JitOptions, get_engine

__all__ = ["Engine", "JitOptions", "get_engine"]
