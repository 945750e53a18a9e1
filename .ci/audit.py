"""Vulnerability audit of the locked test environment (``make audit``).

Runs pip-audit over requirements/test.lock (hash-pinned, so no resolution and no install).
Before that, a canary — a requirement with published advisories (jinja2 2.10) — is audited
with each advisory service in turn: the first service that reports the canary's advisories is
the one used. pip-audit's PyPI service reports a package it cannot look up as *skipped* and
exits 0, so without the canary an unreachable service would pass silently.

Outcomes (exit status):
- 0 and "audit: N locked packages, no known vulnerabilities (service ...)";
- 1 and one line per vulnerability (package, version, id, fixed versions), or per package
  that could not be audited;
- 0 and ONE line "SKIPPED vulnerability audit: ..." when no service's advisory data can be
  reached (no network, a mirror without the per-release JSON API, ...).

Usage: ``python .ci/audit.py LOCKFILE WORKDIR`` with pip-audit beside this interpreter
(``PIP_AUDIT`` overrides its path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

CANARY = "jinja2==2.10"  # CVE-2019-10906 and later advisories: any working service reports it
SERVICES = ("pypi", "osv")


def pip_audit(args: list[str], workdir: Path) -> tuple[dict[str, Any] | None, str]:
    """Run pip-audit with JSON output; (report or None when it failed, its stderr's last line)."""
    exe = os.environ.get("PIP_AUDIT") or str(Path(sys.executable).with_name("pip-audit"))
    out = workdir / "report.json"
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        [exe, *args, "--format", "json", "--output", str(out), "--progress-spinner", "off",
         "--cache-dir", str(workdir / "cache"), "--timeout", "20"],
        capture_output=True, text=True, check=False)
    tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    if proc.returncode not in (0, 1) or not out.exists():
        return None, tail
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report, tail


def working_service(workdir: Path) -> tuple[str | None, list[str]]:
    """The first service whose advisories reach us, or None and why each failed."""
    canary = workdir / "canary.txt"
    canary.write_text(CANARY + "\n", encoding="utf-8")
    reasons = []
    for service in SERVICES:
        report, tail = pip_audit(["-s", service, "-r", str(canary), "--no-deps",
                                  "--disable-pip"], workdir)
        if report is not None and any(d.get("vulns") for d in report["dependencies"]):
            return service, reasons
        if report is None:
            reasons.append(f"{service}: {tail[:160]}")
        else:
            skip = [d.get("skip_reason", "") for d in report["dependencies"] if "skip_reason" in d]
            reasons.append(f"{service}: {(skip or ['no advisory for the canary'])[0][:160]}")
    return None, reasons


def main(argv: list[str]) -> int:
    lock, workdir = Path(argv[1]), Path(argv[2])
    workdir.mkdir(parents=True, exist_ok=True)
    service, reasons = working_service(workdir)
    if service is None:
        print(f"SKIPPED vulnerability audit: advisory data unreachable ({CANARY} canary "
              f"got no advisory: {'; '.join(reasons)})")
        return 0
    report, tail = pip_audit(["-s", service, "-r", str(lock), "--require-hashes", "--no-deps",
                              "--disable-pip"], workdir)
    if report is None:
        print(f"AUDIT FAILED: pip-audit over {lock} did not complete: {tail}")
        return 1
    deps = report["dependencies"]
    problems = [f"AUDIT: could not audit {d['name']} {d.get('version', '')}: {d['skip_reason']}"
                for d in deps if "skip_reason" in d]
    for d in deps:
        for v in d.get("vulns", []):
            fixed = ", ".join(v.get("fix_versions", [])) or "no fixed release"
            problems.append(f"VULNERABLE: {d['name']} {d['version']}: {v['id']} (fixed in {fixed})")
    for line in problems:
        print(line)
    if problems:
        return 1
    print(f"audit: {len(deps)} locked packages, no known vulnerabilities (service {service})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
