"""The step executor named by ``HELIOS_DAGSTER_EXECUTOR``, applied to every job of ``build_defs``.

``multiprocess`` (the default) leaves Dagster's own executor in place, exactly as before. ``k8s``
runs each step as its own Kubernetes Job (dagster-k8s); ``celery`` hands steps to Celery workers
(dagster-celery), whose broker comes from ``HELIOS_CELERY_BROKER_URL`` (read by the run worker,
never written into the code or a run's config). Both packages are the ``deploy`` extra; they are
imported only when chosen. Deployment files: ``deploy/k8s/`` and ``deploy/celery/``.
"""

from __future__ import annotations

import dagster as dg

BROKER_ENV = "HELIOS_CELERY_BROKER_URL"


def executor_for(name: str) -> dg.ExecutorDefinition | None:
    """Dagster's executor for ``name`` (a validated ``Settings.dagster_executor``).

    Returns:
        ``None`` for ``multiprocess``: Dagster's default executor stays in place.

    Raises:
        ValueError: ``name`` is not ``multiprocess``, ``k8s`` or ``celery``.
    """
    if name == "multiprocess":
        return None
    if name == "k8s":
        return _k8s_executor()
    if name == "celery":
        return _celery_executor()
    raise ValueError(f"HELIOS_DAGSTER_EXECUTOR={name!r}: expected multiprocess, k8s or celery.")


def _k8s_executor() -> dg.ExecutorDefinition:
    # Namespace, image and env secrets come from the K8sRunLauncher the Helm chart configures
    # (deploy/k8s/values.yaml); a run's config can still override them.
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor


def _celery_executor() -> dg.ExecutorDefinition:
    from dagster_celery import celery_executor

    # Env references are resolved where the run executes, so no URL (or its password) is in code.
    return celery_executor.configured(
        {"broker": {"env": BROKER_ENV}},
        name="celery_executor",
    )
