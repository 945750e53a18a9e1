"""Sphinx configuration of foxnb's documentation (``make docs``).

The notebooks in ``notebooks/`` are rendered as tutorials with the outputs stored in them:
the build never runs them (myst-nb, execution off). Everything the build writes goes under
``build/`` (the Makefile passes the output directory).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

from sphinx.transforms.post_transforms import SphinxPostTransform  # noqa: E402

import foxnb  # noqa: E402

project = "foxnb"
author = "the foxnb authors"
copyright = "the foxnb authors"
release = foxnb.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_nb",
    "sphinx_click",
    "notebook_outputs",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "_ext", "**.ipynb_checkpoints"]
root_doc = "index"

# -- notebooks: render the stored outputs, never execute ------------------------------------
nb_execution_mode = "off"
nb_merge_streams = True
nb_custom_formats = {".ipynb": "notebook_outputs.read_notebook"}  # plotly figures as HTML
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- API reference: numpy-style docstrings ------------------------------------------------
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = True  # "Attributes" as fields: NamedTuple fields are not documented twice
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}

html_theme = "furo"
html_title = f"foxnb {release}"
html_static_path: list[str] = []
html_show_sourcelink = False


def _skip_namedtuple_fields(app: Any, what: str, name: str, obj: Any, skip: bool,
                            options: Any) -> bool | None:
    # NamedTuple fields carry "Alias for field number N": the class docstring documents them.
    doc = getattr(obj, "__doc__", None) or ""
    if what == "class" and doc.startswith("Alias for field number"):
        return True
    return None


def _check_public_api(app: Any, env: Any) -> None:
    """Fail the build (a warning; ``-W``) when a name of ``foxnb.__all__`` is not documented."""
    from sphinx.util import logging

    documented = set(env.get_domain("py").objects)
    missing = [n for n in foxnb.__all__ if f"foxnb.{n}" not in documented]
    if missing:
        logging.getLogger("foxnb.docs").warning(
            "public names of foxnb.__all__ missing from the API reference (docs/api/): %s",
            ", ".join(missing))


class _NotebookLinks(SphinxPostTransform):
    """Links between notebooks (``[02_jit.ipynb](02_jit.ipynb)``) point at their tutorials.

    ``docs/tutorials/*.ipynb`` are symbolic links to ``notebooks/``; Sphinx resolves a link's
    path through them, so a notebook's relative link names ``notebooks/02_jit``, outside the
    source tree. This runs before MyST resolves its references.
    """

    default_priority = 8  # MyST's reference resolver runs at 9

    def run(self, **kwargs: Any) -> None:
        from sphinx import addnodes

        notebooks = (ROOT / "notebooks").as_posix() + "/"
        for node in self.document.findall(addnodes.pending_xref):
            target = node.get("reftarget", "")
            if node.get("reftype") == "myst" and target.startswith(notebooks):
                node["reftarget"] = "tutorials/" + target[len(notebooks):]


def _check_tutorials(app: Any, env: Any) -> None:
    """Every notebook of ``notebooks/`` is a tutorial (a link in ``docs/tutorials/``)."""
    from sphinx.util import logging

    missing = [nb.name for nb in sorted((ROOT / "notebooks").glob("*.ipynb"))
               if f"tutorials/{nb.stem}" not in env.found_docs]
    if missing:
        logging.getLogger("foxnb.docs").warning(
            "notebooks without a tutorial page: %s (add `ln -s ../../notebooks/NAME "
            "docs/tutorials/`)", ", ".join(missing))


_LONE_STAR = re.compile(r"(?<![*\\])\*(?![*\s])")


def _literal_asterisks(app: Any, ctx: Any, lines: list[str]) -> None:
    # Help texts are written for the terminal, where ``bench/*.py`` is literal; sphinx-click
    # reads them as reStructuredText, where a lone ``*`` starts emphasis.
    lines[:] = [_LONE_STAR.sub(r"\\*", line) for line in lines]


def setup(app: Any) -> None:
    app.connect("sphinx-click-process-description", _literal_asterisks)
    app.connect("sphinx-click-process-options", _literal_asterisks)
    app.connect("autodoc-skip-member", _skip_namedtuple_fields)
    app.connect("env-check-consistency", _check_public_api)
    app.connect("env-check-consistency", _check_tutorials)
    app.add_post_transform(_NotebookLinks)
