"""The ``ridgerider`` command line (entry point ``ridgerider.cli:main``).

- :mod:`~ridgerider.cli.jobs`: ``run`` a search, list ``problems``, manage stored jobs
  (``jobs``, ``show``, ``resume``, ``extend``);
- :mod:`~ridgerider.cli.crossplay`, :mod:`~ridgerider.cli.serve`, :mod:`~ridgerider.cli.token`,
  :mod:`~ridgerider.cli.worker`: one command (group) each;
- :mod:`~ridgerider.cli.common` and :mod:`~ridgerider.cli.report`: what they share.

Bad input (unknown problem, unknown or malformed parameter or setting, out-of-range value)
exits with code 2 and a message naming the field; nothing is written in that case.
"""

from ridgerider.cli.main import main

__all__ = ["main"]
