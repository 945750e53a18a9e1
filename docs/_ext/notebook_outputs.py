"""Render the notebooks' stored plotly figures in the HTML docs (a local Sphinx extension).

myst-nb knows no ``application/vnd.plotly.v1+json`` output. :func:`read_notebook` (the
``.ipynb`` reader, ``nb_custom_formats`` in ``conf.py``) adds the figure's HTML
(``plotly.io.to_html`` without the library) to such outputs; a page that shows figures loads
``_static/plotly.min.js`` once, before its first figure (the library is copied from the
installed plotly package: no network is needed to build or to view the pages).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import nbformat

PLOTLY = "application/vnd.plotly.v1+json"
_JS = "plotly.min.js"
_MARK = "<!-- foxnb-docs: plotly.js -->"  # before each figure; the first becomes the script


def read_notebook(text: str) -> Any:
    """A notebook whose plotly outputs also carry ``text/html``."""
    import plotly.io

    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY in data and "text/html" not in data:
                figure = plotly.io.from_json(nbformat.v4.nbjson.json.dumps(data[PLOTLY]),
                                             skip_invalid=True)
                data["text/html"] = _MARK + plotly.io.to_html(
                    figure, include_plotlyjs=False, full_html=False)
                del data[PLOTLY]
    return nb


def _page(app: Any, pagename: str, templatename: str, context: dict[str, Any],
          doctree: Any) -> None:
    body = context.get("body", "")
    if _MARK in body:  # the figures' own scripts call Plotly as the page loads
        script = f'<script src="{context["pathto"]("_static/" + _JS, 1)}"></script>'
        context["body"] = body.replace(_MARK, script, 1).replace(_MARK, "")


def _copy_js(app: Any, exception: BaseException | None) -> None:
    if exception is None and app.builder.format == "html":
        import plotly

        source = Path(plotly.__file__).parent / "package_data" / _JS
        target = Path(app.outdir) / "_static" / _JS
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _page)
    app.connect("build-finished", _copy_js)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
