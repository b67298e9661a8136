"""``python -m pingan`` is the ``pingan`` command."""

from pingan.cli import main

main()
