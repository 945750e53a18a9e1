"""Processes building the same %%foxaot cell at once: one builds, the others load."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent('''
    import json, sys
    import foxnb
    ns = {}
    cell = 'def tri(n: "int64") -> "int64":\\n    return n * (n + 1) // 2\\n'
    r = foxnb.compile_aot_cell(cell, ns)
    print(json.dumps({"cache": r.library.cache, "value": ns["tri"](10)}))
''')


@pytest.mark.slow
def test_concurrent_builds_of_one_cell_build_once(tmp_path: Path) -> None:
    env = {"FOXNB_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
           "IPYTHONDIR": str(tmp_path / "ipython"), "JUPYTER_NO_CONFIG": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert [o["value"] for o in outs] == [55, 55, 55]
    assert sorted(o["cache"] for o in outs) == ["hit (disk)", "hit (disk)", "miss"]
    assert len(list((tmp_path / "aot").glob("*/*/MANIFEST.json"))) == 1
