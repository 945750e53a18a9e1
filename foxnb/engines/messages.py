"""Shorten numba's compile errors to one line that names the function, the cell line, the reason.

numba's messages are pages long and speak of its internals: SSA names (``'v.2'``,
``$phi12.1``), pseudo file names, overload tables. :func:`describe_failure` keeps the line
that says what is wrong, rewrites it in the user's terms (variable names, cell lines, the
operator and argument types) and adds the fix when one is known.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

from foxnb._text import plural
from foxnb.ir import FunctionDef, find_function, locate

__all__ = ["TRY_EXCEPT_REASON", "CompileFailure", "describe_failure", "first_reason", "plural",
           "shorten"]

TRY_EXCEPT_REASON = ("numba can only catch `Exception` (no specific classes, no `as e`): use "
                     "`except Exception:` or move the try/except into a Python caller")

# Patterns are text, compiled by ``re`` on first use (and cached there): every engine imports
# this module, a compile error is what needs them.
_ANSI = r"\x1b\[[0-9;]*m"
_CELL = r"<fox(?:jit|aot)-cell-\w+>"
# Where numba points: 'File "<file>", line N', '<cell> (N)' (typing/lowering) or '<cell>:N' (Var).
_LOCATION = (rf'File "(?P<file>[^"]+)", line (?P<line>\d+)'
             rf"|(?P<cell>{_CELL})(?: \((?P<line2>\d+)\)|:(?P<line3>\d+))")
_MODULE_REPR = r"<module '([\w.]+)' (?:from '[^']*'|\(built-in\))>"
_CALLEE = r"<function (?P<name>\w+) at 0x"
_SPECIFIC = r"^\s*(?:\w+\.)*\w*(?:Error|Exception): (?P<msg>.+)$"
_SIGNATURE = r"^\s*>>> (?P<name>\w+)\((?P<args>.*)\)\s*$"
_WITH_ARGS = r"With argument\(s\): '\((?P<args>.*)\)':"
_LITERAL = r"Literal\[(?P<kind>\w+)\]\((?:[^()]|\([^()]*\))*\)"
_BIND = (r"Cannot bind 'args=\((?P<args>.*?),?\) kws=\{(?P<kws>.*?)\}' to signature "
         r"'(?P<sig>\(.*?\))' due to \"\w+: (?P<why>.+?)\"\.?$")
_UNIFY_VAR = r"Cannot unify (?P<a>.+) and (?P<b>.+) for '(?P<var>[^']+)'"
_UNIFY_RETURN = r"Can't unify return type from the following types: (?P<types>.+)"
_LITERAL_LIST = r"LiteralList\(\((?P<items>.*?)\)\)"
_BAD_ARGUMENT = r"^- argument (?P<index>\d+): (?P<why>.+)$"
_TRY_EXCEPT = ("exception_match", "Exception matching is limited",
               "Exception object cannot be stored", "'exc_class'")
_NOISE = ("Failed in ", "During:", "File ", "Enable logging", "This error may have",
          "- Resolution failure", "Rewrite ", "raised from ", "^", ">>>", "<source elided>")
_LITERAL_TYPES = {"int": "int64", "str": "unicode_type", "bool": "boolean", "float": "float64"}
_OPERATORS = {
    "add": "+", "iadd": "+=", "sub": "-", "isub": "-=", "mul": "*", "imul": "*=",
    "truediv": "/", "itruediv": "/=", "floordiv": "//", "ifloordiv": "//=", "mod": "%",
    "imod": "%=", "pow": "**", "ipow": "**=", "matmul": "@", "lt": "<", "le": "<=", "gt": ">",
    "ge": ">=", "eq": "==", "ne": "!=", "and_": "&", "or_": "|", "xor": "^", "lshift": "<<",
    "rshift": ">>", "neg": "unary -", "pos": "unary +", "invert": "~", "not_": "not",
    "contains": "in",
}


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
        """``"foxjit: cannot compile f (cell line 3: y = x + 'a'): <reason>"``."""
        inside = f"in {self.where}, " if self.where and self.where != self.function else ""
        place = ""
        if self.line is not None and self.exact:
            code = f": {self.line_text}" if self.line_text else ""
            place = f" ({inside}cell line {self.line}{code})"
        elif self.line is not None:
            place = f" ({inside}defined at cell line {self.line})"
        name = f" {self.function}" if self.function else ""
        return f"{engine}: cannot compile{name}{place}: {self.reason}"


def _split_types(text: str) -> list[str]:
    """Split ``"array(float64, 1d, C), int64"`` at the commas outside brackets."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    last = text[start:].strip()
    return [*parts, last] if last else parts


def _plain_types(text: str) -> str:
    """``Literal[int](1)`` -> ``int64``: the type a user would write."""
    return re.sub(_LITERAL, lambda m: _LITERAL_TYPES.get(m["kind"], m["kind"]), text)


def _user_words(text: str) -> str:
    """Rewrite numba's internal names (SSA variables, pseudo files, paths) in user terms."""
    text = re.sub(_MODULE_REPR, r"\1", text)
    text = re.sub(r"\.* Raised from .*$", "", text)
    text = re.sub(rf'File "{_CELL}", line (\d+)', r"cell line \1", text)
    text = re.sub(rf"{_CELL}(?: \((\d+)\)|:(\d+))", lambda m: f"cell line {m[1] or m[2]}", text)
    text = re.sub(_CELL, "the cell", text)
    # numba's own files: 'File "…/numba/x.py", line N', 'File: numba/x.py: Line N.', paths.
    text = re.sub(r'File "[^"]+", line \d+', "numba's code", text)
    text = re.sub(r"File: \S+: Line [\w/]+\.?", "", text)
    text = re.sub(r"(?:[A-Za-z]:)?[\w.+~-]*(?:[/\\][\w.+~-]+)+\.py(?::\d+| \(\d+\))?",
                  "numba's code", text)
    # SSA names: '$phi12.1' and other temporaries, 'arg.x', 'v.2'.
    text = re.sub(r"'?\$[\w.]+'?", "a temporary value", text)
    text = re.sub(r"\barg\.([A-Za-z_]\w*)", r"\1", text)
    text = re.sub(r"\b([A-Za-z_]\w*)(?:\.\d+)+\b", r"\1", text)
    return _plain_types(text).strip()


def _specific_errors(lines: list[str]) -> list[str]:
    """Errors numba's overloads raised while matching ("Rejected as ... specific error:")."""
    found = []
    for i, ln in enumerate(lines[:-1]):
        if ln.strip().startswith("Rejected as the implementation raised a specific error"):
            m = re.match(_SPECIFIC, lines[i + 1])
            if m and not m["msg"].startswith(("Failed in ", "Poison type")):
                found.append(m["msg"].strip())
    return found


def _no_implementation(lines: list[str]) -> str | None:
    """Name the call numba could not match, with the argument types, in user words."""
    specific = _specific_errors(lines)
    if specific and specific[0].startswith("Cannot mutate a literal list"):
        found = (re.search(_LITERAL_LIST, _plain_types(ln)) for ln in lines)
        items = next((m["items"] for m in found if m), "")
        kinds = ", ".join(dict.fromkeys(_split_types(items)))
        return (f"a list of mixed types ({kinds}) is a constant in numba and cannot change: "
                f"give its items one type")
    if specific:
        return specific[0]
    sig = next((m for ln in lines if (m := re.match(_SIGNATURE, ln))), None)
    if sig is None:
        return None
    name = sig["name"]
    with_args = next((m["args"] for ln in lines if (m := re.search(_WITH_ARGS, ln))), None)
    types = _split_types(_plain_types(with_args if with_args is not None else sig["args"]))
    call = f"{name}({', '.join(types)})"
    if name in _OPERATORS and 1 <= len(types) <= 2:
        return f"{_OPERATORS[name]} of {' and '.join(types)} is not supported ({call})"
    if name == "getitem" and len(types) == 2:
        return f"indexing {types[0]} with {types[1]} is not supported ({call})"
    if name == "setitem" and len(types) == 3:
        return f"assigning {types[2]} to an item of {types[0]} is not supported ({call})"
    return f"no implementation of {call} in numba"


def _rewrite(reason: str, lines: list[str], function: FunctionDef | None) -> str:
    """Known numba reasons, said in the user's terms with the fix."""
    if reason.startswith("No implementation of function"):
        better = _no_implementation(lines)
        if better is not None:
            return better
    if m := re.search(_BIND, reason):
        args = _split_types(m["args"]) + _split_types(m["kws"])
        return (f"a call passes {plural(len(args), 'argument')} ({', '.join(args)}) to "
                f"signature {m['sig']}: {m['why']}")
    if m := re.search(_UNIFY_VAR, reason):
        return (f"variable '{m['var']}' is {m['a']} in one place and {m['b']} in another: "
                f"numba needs one type per variable (convert, or use a second name)")
    if m := re.search(_UNIFY_RETURN, reason):
        types = sorted(dict.fromkeys(_split_types(_plain_types(m["types"]))))
        return (f"the function returns {plural(len(types), 'type')} ({', '.join(types)}): "
                f"numba needs one return type")
    if reason.startswith("non-precise type pyobject"):
        bad = [m for ln in lines if (m := re.match(_BAD_ARGUMENT, ln))]
        names = function.arg_names if function is not None else ()
        if bad:
            index = int(bad[0]["index"])
            arg = f"'{names[index]}'" if index < len(names) else f"{index + 1}"
            return f"argument {arg}: {bad[0]['why']}"
        return "a value has a Python type numba cannot compile (pyobject)"
    if reason.startswith("Untyped global name"):
        reason = "u" + reason[1:]
        if "<class 'function'>" in reason:
            reason += (" (a plain Python function: define it in a %%foxjit cell to call it "
                       "from here)")
    if "scipy" in reason and "linear algebra" in reason:
        return f"np.linalg needs SciPy in numba: install scipy ({reason})"
    return reason


def _reason(text: str, function: FunctionDef | None = None) -> tuple[str, bool]:
    """The reason, and whether it is one foxnb recognised and rewrote."""
    lines = text.splitlines()
    stripped = [ln.strip() for ln in lines]
    if any(marker in text for marker in _TRY_EXCEPT):
        return TRY_EXCEPT_REASON, True
    useful = [ln for ln in stripped if ln and not ln.startswith(_NOISE)]
    if not useful:
        return _user_words(next((ln for ln in stripped if ln), "unknown error")), False
    reason = _rewrite(useful[0], lines, function)
    known = reason is not useful[0]
    if not known and reason.endswith(":") and len(useful) > 1:
        reason = f"{reason} {useful[1]}"
    reason = _user_words(reason)
    return (reason if len(reason) <= 240 else reason[:237] + "..."), known


def first_reason(text: str) -> str:
    """The line of a compiler message that says what is wrong, shortened."""
    return _reason(re.sub(_ANSI, "", text))[0]


def shorten(reason: str) -> str:
    """Drop noise such as module paths, pseudo file names and SSA names from a reason."""
    return _user_words(reason)


def _locations(text: str) -> Iterable[tuple[FunctionDef, int]]:
    for match in re.finditer(_LOCATION, text):
        filename = match["file"] or match["cell"]
        line = int(match["line"] or match["line2"] or match["line3"])
        found = locate(filename, line)
        if found is not None:
            yield found, line


def _unsupported_construct(function: FunctionDef, reason: str) -> int | None:
    """Cell line of the construct a reason without location complains about: an ``except``
    numba cannot compile (a class, a tuple, ``as e``) or a ``with ... as``."""
    try:
        tree = ast.parse(function.source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if reason == TRY_EXCEPT_REASON and isinstance(node, ast.ExceptHandler) and (
                node.name is not None
                or (node.type is not None
                    and not (isinstance(node.type, ast.Name) and node.type.id == "Exception"))):
            return function.lineno + node.lineno - 1
        if ("'with (context manager)" in reason and isinstance(node, ast.With)
                and any(item.optional_vars is not None for item in node.items)):
            return function.lineno + node.lineno - 1
    return None


def describe_failure(exc: BaseException, function: FunctionDef | None = None) -> CompileFailure:
    """Reduce an exception raised while compiling ``function`` to a :class:`CompileFailure`.

    Parameters
    ----------
    exc : BaseException
        What numba raised.
    function : FunctionDef, optional
        The fox function being compiled; found from the message's location when omitted.

    Returns
    -------
    CompileFailure
        ``reason`` is the line that says what is wrong, in the user's words.
    """
    text = re.sub(_ANSI, "", str(exc))
    line: int | None = None
    where: str | None = None
    owner = function
    located = list(_locations(text))
    if re.search(_UNIFY_RETURN, text):
        located.sort(key=lambda found: found[1])  # numba lists the returns in no fixed order
    if located:
        owner, line = located[0]
        where = owner.name
    if function is None:
        function = owner
    callee = re.search(_CALLEE, text)  # the function numba was typing, when it names one
    if function is None and callee:
        function = owner = find_function(callee["name"])
    reason, known = _reason(text, function)
    exact = line is not None
    if line is None and owner is not None:
        line = _unsupported_construct(owner, reason)
        exact = line is not None
    if line is None and owner is not None:
        # No location in the message: the callee numba was typing, and a line that
        # mentions the quoted name the reason complains about, if any.
        if callee and callee["name"] != owner.name:
            owner = find_function(callee["name"]) or owner
            where = owner.name
        line, exact = _line_naming(owner, reason)
    line_text = owner.line_text(line) if owner is not None and line is not None else ""
    if not type(exc).__module__.startswith("numba") and not known:
        reason = f"numba failed on unsupported code ({type(exc).__name__}: {reason})"
    return CompileFailure(function=function.name if function is not None else "", line=line,
                          line_text=line_text, where=where, reason=reason, details=text,
                          exact=exact)


def _line_naming(function: FunctionDef, reason: str) -> tuple[int, bool]:
    names = re.findall(r"'(\w+)'", reason)
    if "np.linalg" in reason:
        names.append("linalg")
    for offset, text in enumerate(function.source.splitlines()[1:], start=1):
        if any(re.search(rf"\b{re.escape(n)}\b", text) for n in names):
            return function.lineno + offset, True
    return function.lineno, False
