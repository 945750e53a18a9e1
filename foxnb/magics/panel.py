"""``%foxpanel``: show foxnb's live panel (see :func:`foxnb.widgets.panel`)."""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from foxnb.widgets.charts import THEMES

__all__ = ["PanelMagics"]


@magics_class
class PanelMagics(Magics):  # type: ignore[misc]
    """The ``%foxpanel`` line magic."""

    @magic_arguments()
    @argument("--theme", choices=THEMES, default="auto",
              help="chart colours: auto (reads well in light and dark themes), light or dark")
    @argument("--static", action="store_true",
              help="show an HTML snapshot instead of the live widget panel")
    @argument("--close", action="store_true",
              help="close every open panel and stop its update thread")
    @line_magic
    def foxpanel(self, line: str = "") -> Any:
        """Show foxnb's panel: tasks, timeline, cache, breakers, strategies, process.

        Live (updated from a background thread, at most 4 times a second) where the front
        end shows widgets; an HTML snapshot elsewhere. The panel object is returned.
        """
        args = parse_argstring(self.foxpanel, line)  # bad options: UsageError
        from foxnb.widgets import close_all, panel

        if args.close:
            close_all()
            return None
        return panel(theme=args.theme, live=False if args.static else None)
