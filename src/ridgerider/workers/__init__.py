"""Workers: what rides branches.

Each claims branches from a job's frontier, expands them with the engine and completes them in
one fenced transaction, beating its leases while it rides.

- :mod:`ridgerider.workers.worker`: the loop itself (:class:`~.worker.Worker`: claim → expand →
  complete, heartbeat, adaptive claim size).
- :mod:`ridgerider.workers.pools`: the pool interface the service holds, local worker threads,
  and the adapter for remote pools.
- :mod:`ridgerider.workers.processes`: worker processes on this machine.
- :mod:`ridgerider.workers.ray`: workers as Ray actors with their supervisor (imports Ray).
- :mod:`ridgerider.workers.runner`: what the CLI calls to run, resume or extend a job here.

Workers talk to storage only through :mod:`ridgerider.services` (the archive they open with
:func:`ridgerider.services.archive.open_archive`); nothing in ``services`` imports a worker.
This package's ``__init__`` imports none of its modules, so importing one never pulls in Ray.
"""
