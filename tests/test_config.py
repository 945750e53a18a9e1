"""Settings from the environment: a bad value names its variable and the accepted form."""

from __future__ import annotations

import pytest

from foxnb import config


def test_a_bad_size_blames_only_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOXNB_CACHE_MAX_BYTES", "lots")
    monkeypatch.setenv("FOXNB_MEMORY_CACHE_ENTRIES", "10")
    monkeypatch.setenv("FOXNB_CACHE_DIR", "/tmp/somewhere")
    with pytest.raises(ValueError, match="FOXNB_CACHE_MAX_BYTES='lots' is not a size") as info:
        config.configure(reset=True)
    message = str(info.value)
    assert "500M" in message and "2G" in message
    assert "FOXNB_MEMORY_CACHE_ENTRIES" not in message and "FOXNB_CACHE_DIR" not in message


def test_a_bad_entry_count_names_that_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOXNB_MEMORY_CACHE_ENTRIES", "many")
    monkeypatch.setenv("FOXNB_CACHE_MAX_BYTES", "2G")
    with pytest.raises(ValueError, match="FOXNB_MEMORY_CACHE_ENTRIES='many' is not a whole") \
            as info:
        config.configure(reset=True)
    assert "FOXNB_CACHE_MAX_BYTES" not in str(info.value)


@pytest.mark.parametrize(("raw", "expected"), [
    ("123456", 123456), ("500M", 500 * 1024**2), ("2G", 2 * 1024**3), ("2g", 2 * 1024**3),
    ("1.5GiB", 3 * 1024**3 // 2), ("800KB", 800 * 1024), ("0", 0),
])
def test_sizes_with_units_are_accepted(monkeypatch: pytest.MonkeyPatch, raw: str,
                                       expected: int) -> None:
    monkeypatch.setenv("FOXNB_CACHE_MAX_BYTES", raw)
    try:
        assert config.configure(reset=True).cache_max_bytes == expected
    finally:
        monkeypatch.delenv("FOXNB_CACHE_MAX_BYTES")
        config.configure(reset=True)


def test_configure_accepts_a_size_and_rejects_nonsense() -> None:
    try:
        assert config.configure(cache_max_bytes="64M").cache_max_bytes == 64 * 1024**2
        with pytest.raises(ValueError, match="cache_max_bytes"):
            config.configure(cache_max_bytes="-1G")
    finally:
        config.configure(reset=True)
