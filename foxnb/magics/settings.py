"""``%config FoxMagics.<knob> = value``: foxnb's configuration knobs as traitlets.

One trait per knob of :class:`foxnb.configuration.Settings` on :class:`FoxMagics` (the
``%%foxjit`` magics subclass it). A value set with ``%config`` is checked by the same
converters as every other source (a bad one is a ``TraitError`` naming the accepted form,
and nothing changes) and becomes the session's value, above the files
(``foxnb.config().source(knob)`` says ``%config FoxMagics.<knob>``). Importing this module
imports neither pydantic nor the engines.
"""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, magics_class
from traitlets import Any as AnyTrait
from traitlets import Bunch, TraitError, observe, validate

from foxnb import configuration

__all__ = ["FoxMagics"]

_NAMES = configuration.Settings._fields


def _check(self: Any, proposal: Bunch) -> Any:
    name = proposal["trait"].name
    try:
        return configuration.check({name: proposal["value"]})[name]
    except configuration.SettingsError as exc:
        raise TraitError(f"%config FoxMagics.{name}: {exc}") from None


def _apply(self: Any, change: Bunch) -> None:
    name = change["name"]
    configuration.set_session({name: change["new"]}, f"%config FoxMagics.{name}")


_body: dict[str, Any] = {
    name: AnyTrait(None, allow_none=True, help=configuration.accepted(name)).tag(config=True)
    for name in _NAMES
}
_body["_check_knob"] = validate(*_NAMES)(_check)
_body["_apply_knob"] = observe(*_NAMES)(_apply)
_body["__doc__"] = ("foxnb's magics; ``%config FoxMagics.<knob> = value`` sets a foxnb "
                    "configuration knob for this session (see ``foxnb.config()``).")
_body["__module__"] = __name__

#: The configurable class of foxnb's magics (``%config FoxMagics``).
FoxMagics: Any = magics_class(type("FoxMagics", (Magics,), _body))
