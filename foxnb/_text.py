"""Small text helpers shared by the cache and the engines' messages (no foxnb imports)."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, word: str, words: str | None = None) -> str:
    """``"1 argument"``, ``"2 arguments"``: a count with the right form of ``word``."""
    return f"{count} {word if count == 1 else (words or word + 's')}"
