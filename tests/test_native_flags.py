"""$FOXNB_NATIVE_CFLAGS: extra flags for the native builds (CI's sanitizer step), in their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from foxnb.engines._aot import native


def test_flags_reach_the_compiler_and_key_the_native_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOXNB_NATIVE_DIR", str(tmp_path))
    monkeypatch.delenv("FOXNB_NATIVE_CFLAGS", raising=False)
    plain = native.native_dir()
    monkeypatch.setenv("FOXNB_NATIVE_CFLAGS", " -DFOXNB_PROBE=1 ")
    probe = native.native_dir()
    assert probe != plain and probe.parent == plain.parent  # a sanitized build never mixes in
    assert native.runtime_object() == probe / "foxnb_runtime.o"
    assert not plain.exists()
    # An unknown flag fails the build, naming itself: the flags are on the command line.
    monkeypatch.setenv("FOXNB_NATIVE_CFLAGS", "-DFOXNB_PROBE=1 --foxnb-no-such-flag")
    assert native.native_dir() not in (plain, probe)
    with pytest.raises(RuntimeError, match="--foxnb-no-such-flag"):
        native.runtime_object()


def test_the_compiler_keys_the_native_directory(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOXNB_NATIVE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "gcc")
    gcc = native.native_dir()
    monkeypatch.setenv("CC", "clang")
    assert native.native_dir() != gcc


def test_the_native_flags_are_in_the_aot_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # A library links the native runtime: one built against a sanitized runtime is another
    # library and must not share a cache entry with a plain one.
    from foxnb.engines.aot import _toolchain

    monkeypatch.delenv("FOXNB_NATIVE_CFLAGS", raising=False)
    plain = _toolchain()
    monkeypatch.setenv("FOXNB_NATIVE_CFLAGS", "-fsanitize=address")
    assert _toolchain() != plain
