"""``python -m foxnb``: the ``foxnb`` command (see :mod:`foxnb.cli`)."""

from foxnb.cli import main

if __name__ == "__main__":
    main()
