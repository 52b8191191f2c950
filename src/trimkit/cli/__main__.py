"""``python -m trimkit.cli``: the ``trimkit`` command."""

from trimkit.cli import main

main()
