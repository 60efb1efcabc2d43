"""What talks to storage: the archive, job lifecycle, submission, accounts, cross-play runs.

The archive is storage and frontier opened together, with recovery after a crash; reading the
job list opens the storage alone (``listing``, ``location``), without the engine.

Layering: services import :mod:`ridgerider.problems`, :mod:`ridgerider.core` and the status
enums of :mod:`ridgerider.schemas`, never the workers, the CLI or the API.
"""
