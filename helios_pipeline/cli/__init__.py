"""The ``helios`` command: one module per command group, assembled by ``main``.

Modules:
    main: the parser and the entry point (``helios = helios_pipeline.cli.main:main``).
    common: the console, user errors, symbol arguments and the project's Dagster instance.
    backfill: ``helios backfill`` (preflight, runs through Dagster with progress, the table).
    demo: ``helios demo``, the whole batch path offline against two simulated venues.
    stream: ``helios stream``, the realtime service (one process or ``--shards N``).
    sim: ``helios sim-exchange``, a simulated venue in the foreground.
    ui: ``helios ui``, the Dagster UI on the project's instance.

Nothing imports this package; it imports the layers below it.
"""
