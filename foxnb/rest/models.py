"""Request and response bodies of the REST server (pydantic; they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from foxnb.rest.service import CellSpec

__all__ = ["FIXES", "CellOptions", "CellRequest", "ErrorBody", "FieldError", "TaskAccepted",
           "TaskStatus", "fix_for"]

#: A signature: ``NAME:SIGNATURE`` in numba's syntax.
SIGNATURE = r"^\s*[A-Za-z_]\w*\s*:\s*\S.*$"
MAX_SOURCE_CHARS = 200_000

#: What to send instead, by field (list indexes left out: ``signatures.0`` -> ``signatures``).
FIXES = {
    "body": 'send a JSON object such as {"source": "def f(x):\\n    return x + 1\\n", '
            '"engine": "aot", "signatures": ["f:float64(float64)"]}',
    "source": "send the cell's Python source as one JSON string",
    "engine": 'use "aot" (a shared library and header to download) or "jit" (each signature '
              "compiled into the server's cache)",
    "signatures": 'send a list of "NAME:SIGNATURE" strings in numba syntax, e.g. '
                  '["pairsum:float64(float64[::1], int64)"]',
    "options": "send an object with opt_level, error_model, fastmath, boundscheck and name "
               "(all optional)",
    "options.opt_level": "use an integer from 0 to 3",
    "options.error_model": 'use "numpy" or "python"',
    "options.fastmath": "use true or false",
    "options.boundscheck": "use true or false",
    "options.name": "use a C identifier of at most 44 characters (letters, digits, _)",
}


def fix_for(field: str, error_type: str) -> str:
    """The advice for an invalid ``field`` (dotted path) with pydantic's ``error_type``."""
    if error_type == "extra_forbidden":
        parent = field.rpartition(".")[0]
        allowed = (CellOptions if parent == "options" else CellRequest).model_fields
        return f"remove it; the fields here are {', '.join(allowed)}"
    plain = ".".join(p for p in field.split(".") if not p.isdigit())
    return FIXES.get(plain, FIXES["body"])


class CellOptions(BaseModel):
    """How to compile: the options of ``%%foxaot`` / ``%%foxjit`` that change the code."""

    model_config = ConfigDict(extra="forbid")

    opt_level: int | None = Field(default=None, ge=0, le=3, description=(
        "LLVM optimisation level 0-3. Default: 3 for aot; numba's own pipeline for jit."))
    error_model: Literal["numpy", "python"] | None = Field(default=None, description=(
        "Default: numpy for aot (x/0 gives inf), python for jit (x/0 raises)."))
    fastmath: bool = False
    boundscheck: bool = False
    name: str | None = Field(default=None, pattern=r"^[A-Za-z_]\w{0,43}$",
                             description="Library name (aot): NAME.so and NAME.h.")


class CellRequest(BaseModel):
    """A cell to build: its source, the engine, the exported signatures and the options."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(..., min_length=1, max_length=MAX_SOURCE_CHARS,
                        description="Python source of the cell, as in a notebook.")
    engine: Literal["aot", "jit"] = Field("aot", description=(
        "aot: one shared library with a C ABI, downloaded from /artifacts. jit: each "
        "signature compiled eagerly into the server's disk cache (a check that the cell "
        "compiles, and warm code for kernels sharing that cache); nothing to download."))
    signatures: list[Annotated[str, Field(pattern=SIGNATURE, max_length=1000)]] = Field(
        default_factory=list, max_length=64,
        description='"NAME:SIGNATURE" in numba syntax, e.g. "f:float64(float64[::1], int64)". '
                    "aot also reads string annotations; jit needs at least one.")
    options: CellOptions = CellOptions()

    def spec(self) -> CellSpec:
        """The service's view of this request."""
        o = self.options
        return CellSpec(self.source, self.engine, tuple(s.strip() for s in self.signatures),
                        o.opt_level, o.error_model, o.fastmath, o.boundscheck, o.name)


class TaskAccepted(BaseModel):
    """A build was started, or an equal request's build was joined."""

    task_id: str
    state: str
    deduplicated: bool = Field(description="True when an equal request's build was joined.")
    status_url: str


class TaskStatus(BaseModel):
    """A build's state; ``result`` when done (aot: the library key and its files)."""

    id: str
    state: str
    engine: str
    attempts: list[dict[str, Any]]
    error: str | None
    result: dict[str, Any] | None
    duration_s: float | None


class FieldError(BaseModel):
    """One invalid field: where, what is wrong, what to send instead."""

    field: str
    message: str
    fix: str


class ErrorBody(BaseModel):
    """Every error response: a sentence, and the invalid fields for a 422."""

    error: str
    errors: list[FieldError] = []
