"""Shorten numba's compile errors to one line that names the function, the cell line, the reason."""

from __future__ import annotations

import re
from dataclasses import dataclass

from foxnb.ir import FunctionDef, find_function, locate

__all__ = ["CompileFailure", "describe_failure", "first_reason", "shorten"]

_LOCATION = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MODULE_REPR = re.compile(r"<module '([\w.]+)' (?:from '[^']*'|\(built-in\))>")
_SPECIFIC = re.compile(r"(?:TypingError|NumbaTypeError|NumbaValueError|TypeError): (.+)")
_CALLEE = re.compile(r"<function (?P<name>\w+) at 0x")
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
    exact: bool = True  # False: the compiler named no line; ``line`` is the ``def`` line

    def message(self, *, engine: str = "foxjit") -> str:
        inside = f"in {self.where}, " if self.where and self.where != self.function else ""
        place = ""
        if self.line is not None and self.exact:
            code = f": {self.line_text}" if self.line_text else ""
            place = f" ({inside}cell line {self.line}{code})"
        elif self.line is not None:
            place = f" ({inside}defined at cell line {self.line})"
        return f"{engine}: cannot compile {self.function}{place}: {self.reason}"


def _reason(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()]
    useful = [ln for ln in lines if ln and not ln.startswith(_NOISE) and not ln.startswith(">>>")]
    if not useful:
        return lines[0] if lines else "unknown error"
    reason = useful[0]
    if reason.startswith("No implementation of function"):
        # The overload that matched by name raised a specific error: that is the reason.
        specific = [m[1] for ln in lines if (m := _SPECIFIC.search(ln))]
        if specific:
            return _reason(specific[0])
    if reason.endswith(":") and len(useful) > 1:
        reason = f"{reason} {useful[1]}"
    reason = _MODULE_REPR.sub(r"\1", reason.replace("Untyped global name", "untyped global name"))
    if len(reason) > 240:
        reason = reason[:237] + "..."
    if reason.startswith("untyped global name") and "<class 'function'>" in reason:
        reason += " (a plain Python function: define it in a %%foxjit cell to call it from here)"
    return reason


def first_reason(text: str) -> str:
    """The line of a compiler message that says what is wrong, shortened."""
    return _reason(_ANSI.sub("", text))


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
    reason = _reason(text)
    exact = line is not None
    if line is None:
        # No location in the message: the callee numba was typing, and a line that
        # mentions the quoted name the reason complains about, if any.
        callee = _CALLEE.search(text)
        owner = function
        if callee and callee["name"] != function.name:
            owner = find_function(callee["name"]) or function
            where = owner.name
        line, exact = _line_naming(owner, reason)
        line_text = owner.line_text(line)
    if not type(exc).__module__.startswith("numba"):
        reason = f"numba failed on unsupported code ({type(exc).__name__}: {reason})"
    return CompileFailure(function=function.name, line=line, line_text=line_text, where=where,
                          reason=reason, details=text, exact=exact)


def _line_naming(function: FunctionDef, reason: str) -> tuple[int, bool]:
    names = re.findall(r"'(\w+)'", reason)
    for offset, text in enumerate(function.source.splitlines()[1:], start=1):
        if any(re.search(rf"\b{re.escape(n)}\b", text) for n in names):
            return function.lineno + offset, True
    return function.lineno, False
