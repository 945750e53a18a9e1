"""Settings from the environment: a bad value names its variable and the accepted form."""

from __future__ import annotations

from pathlib import Path

import pytest

from foxnb import configuration as config


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


def test_an_unknown_setting_names_the_closest_known_one() -> None:
    before = config.settings()
    with pytest.raises(ValueError, match=r"unknown setting 'cache_dri' \(did you mean "
                                         r"'cache_dir'\?\); known settings: cache_dir, ") as info:
        config.configure(cache_dri="/tmp/x")
    assert "pydantic" not in str(info.value)
    assert config.settings() is before  # a failed configure changes nothing


@pytest.mark.parametrize(("change", "message"), [
    ({"task_history": 0}, "task_history=0 is not a whole number of tasks, 1 or more"),
    ({"memory_cache_entries": -3}, "memory_cache_entries=-3 is not a whole number of entries"),
    ({"cache_enabled": "maybe"}, "cache_enabled='maybe' is not true or false"),
    ({"cache_max_bytes": 2.5}, "cache_max_bytes=2.5 is not a size in bytes"),
])
def test_a_bad_value_names_the_setting_and_the_accepted_form(change: dict[str, object],
                                                             message: str) -> None:
    with pytest.raises(ValueError) as info:
        config.configure(**change)
    assert str(info.value).startswith(f"invalid foxnb setting: {message}")
    assert "pydantic" not in str(info.value) and "validation error" not in str(info.value)


def test_values_are_converted_like_their_environment_form(tmp_path: Path) -> None:
    try:
        new = config.configure(cache_dir=str(tmp_path), cache_enabled="off",
                               memory_cache_entries=" 12 ", cache_max_bytes=1024.0)
        assert new.cache_dir == tmp_path and isinstance(new.cache_dir, Path)
        assert new.cache_enabled is False
        assert (new.memory_cache_entries, new.cache_max_bytes) == (12, 1024)
    finally:
        config.configure(reset=True)
