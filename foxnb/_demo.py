"""Execute a notebook headless in a real ipykernel and write it as HTML (``make demo``)."""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    source, target = Path(argv[0]), Path(argv[1])
    nb = nbformat.read(source, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(source.parent)}}).execute()
    html, _ = HTMLExporter().from_notebook_node(nb)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    print(f"wrote {target.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
