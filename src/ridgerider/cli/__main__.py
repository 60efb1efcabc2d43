"""``python -m ridgerider.cli``: the same as the ``ridgerider`` command."""

from ridgerider.cli.main import main

main()
