"""Shorten numba's compile errors to one line that names the function, the cell line, the reason."""

from __future__ import annotations

import re
from dataclasses import dataclass

from foxnb.ir import FunctionDef, locate

__all__ = ["CompileFailure", "describe_failure", "shorten"]

_LOCATION = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MODULE_REPR = re.compile(r"<module '([\w.]+)' (?:from '[^']*'|\(built-in\))>")
_NOISE = ("Failed in ", "During:", "File ", "Enable logging", "This error may have",
          "- Resolution failure", "Rewrite ", "raised from ", "^")


@dataclass(frozen=True)
class CompileFailure:
    """A compile error reduced to what a user needs."""

    function: str
    line: int | None
    line_text: str
    where: str | None  # the function containing the line, when it is another one
    reason: str
    details: str

    def message(self, *, engine: str = "foxjit") -> str:
        place = ""
        if self.line is not None:
            inside = f" in {self.where}," if self.where and self.where != self.function else ""
            code = f": {self.line_text}" if self.line_text else ""
            place = f" ({inside.strip()} cell line {self.line}{code})".replace("( ", "(")
        return f"{engine}: cannot compile {self.function}{place}: {self.reason}"


def _reason(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()]
    useful = [ln for ln in lines if ln and not ln.startswith(_NOISE) and not ln.startswith(">>>")]
    if not useful:
        return lines[0] if lines else "unknown error"
    reason = useful[0]
    if reason.endswith(":") and len(useful) > 1:
        reason = f"{reason} {useful[1]}"
    reason = _MODULE_REPR.sub(r"\1", reason.replace("Untyped global name", "untyped global name"))
    if len(reason) > 240:
        reason = reason[:237] + "..."
    if reason.startswith("untyped global name") and "<class 'function'>" in reason:
        reason += " (a plain Python function: define it in a %%foxjit cell to call it from here)"
    return reason


def shorten(reason: str) -> str:
    """Drop noise such as full module paths from a compiler's one-line reason."""
    return _MODULE_REPR.sub(r"\1", reason)


def describe_failure(exc: BaseException, function: FunctionDef) -> CompileFailure:
    """Reduce a numba exception raised while compiling ``function``."""
    text = _ANSI.sub("", str(exc))
    line: int | None = None
    line_text = ""
    where: str | None = None
    for match in _LOCATION.finditer(text):
        found = locate(match["file"], int(match["line"]))
        if found is not None:
            line, where = int(match["line"]), found.name
            line_text = found.line_text(line)
            break
    if line is None:
        line, line_text = function.lineno, function.line_text(function.lineno)
    reason = _reason(text)
    if not type(exc).__module__.startswith("numba"):
        reason = f"numba failed on unsupported code ({type(exc).__name__}: {reason})"
    return CompileFailure(function=function.name, line=line, line_text=line_text, where=where,
                          reason=reason, details=text)
