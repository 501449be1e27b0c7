"""The Kubernetes and Celery setups in ``deploy/k8s`` and ``deploy/celery``, config-checked.

No cluster and no Celery worker fleet here: each shipped ``dagster.yaml`` is loaded as a real
instance (on a fresh database of the machine's PostgreSQL, 127.0.0.1:5432) with its run launcher,
coordinator and limits built by Dagster; the project's jobs are built with each executor that
``HELIOS_DAGSTER_EXECUTOR`` can name and their run configs validated by Dagster's own schema; the
Helm values are parsed and held to what the chart needs from us (module, image, env, Secrets).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster_celery.cli import get_validated_config

from helios_pipeline.defs.build import build_defs
from helios_pipeline.defs.executors import BROKER_ENV
from helios_pipeline.defs.history import BACKFILL_JOB
from helios_pipeline.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"
BACKFILL_CONFIG = {"ops": {"backfill_candles": {"config": {
    "symbol": "BTC/USDT", "start": "2024-01-01", "end": "2024-01-31"}}}}
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: not-a-secret}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


@pytest.fixture
def pg_url(postgres_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database for the instance, named to HELIOS_DAGSTER_PG_URL."""
    monkeypatch.setenv("HELIOS_DAGSTER_PG_URL",
                       postgres_database.replace("postgresql://", "postgresql+psycopg2://"))
    return postgres_database.rsplit("/", 1)[1]


def _home(tmp_path: Path, text: str) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(text)
    return home


def _assert_limits(instance: dg.DagsterInstance) -> None:
    """The limits every shipped variant shares with deploy/dagster-postgres.yaml."""
    concurrency = instance.get_concurrency_config()
    assert concurrency.run_queue_config is not None
    assert concurrency.run_queue_config.max_concurrent_runs == 8
    assert concurrency.pool_config.default_pool_limit == 2
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert instance.get_runs() == []  # the storage answers: its tables were created


def test_k8s_instance_loads_with_its_run_launcher(tmp_path: Path, pg_url: str) -> None:
    shipped = (DEPLOY / "k8s" / "dagster.yaml").read_text()
    # The one change: a kubeconfig instead of the in-cluster service account this machine lacks.
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    kubeconfig = f"load_incluster_config: false\n    kubeconfig_file: {tmp_path}/kubeconfig"
    text = shipped.replace("load_incluster_config: true", kubeconfig)
    assert text != shipped
    with dg.DagsterInstance.from_config(str(_home(tmp_path, text))) as instance:
        _assert_limits(instance)
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "K8sRunLauncher"
        # Read back through the launcher's public config, the way it builds run pods.
        config = launcher.inst_data.config_dict if launcher.inst_data else {}
        assert config["job_image"].startswith("registry.example.com/helios:")
        assert config["env_secrets"] == ["helios-secrets"]
        assert "HELIOS_DAGSTER_EXECUTOR=k8s" in config["env_vars"]


def test_celery_instance_loads(tmp_path: Path, pg_url: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELIOS_DAGSTER_LOG_DIR", str(tmp_path / "logs"))
    text = (DEPLOY / "celery" / "dagster.yaml").read_text()
    with dg.DagsterInstance.from_config(str(_home(tmp_path, text))) as instance:
        _assert_limits(instance)
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        assert type(instance.compute_log_manager).__name__ == "LocalComputeLogManager"


def test_celery_worker_config_takes_the_broker_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(DEPLOY / "celery" / "celery.yaml")
    monkeypatch.setenv(BROKER_ENV, BROKER)
    # The worker CLI's own loader (``dagster-celery worker start -y``) validates the file.
    assert get_validated_config(path)["broker"] == BROKER
    # ...and it names the variable, not a URL.
    execution = yaml.safe_load(Path(path).read_text())["execution"]["config"]
    assert execution == {"broker": {"env": BROKER_ENV}}


def _backfill_job(settings: Settings, executor: str) -> dg.JobDefinition:
    chosen = Settings(**{**settings.__dict__, "dagster_executor": executor})
    return build_defs(chosen).resolve_job_def(BACKFILL_JOB)


def test_default_executor_is_unchanged(settings: Settings) -> None:
    assert settings.dagster_executor == "multiprocess"
    job = build_defs(settings).resolve_job_def(BACKFILL_JOB)
    assert job.executor_def.name == dg.multi_or_in_process_executor.name


def test_k8s_executor_run_config(settings: Settings) -> None:
    job = _backfill_job(settings, "k8s")
    assert job.executor_def.name == "k8s"
    execution = {"config": {"job_namespace": "helios", "max_concurrent": 4,
                            "env_secrets": ["helios-secrets"],
                            "step_k8s_config": {"container_config": {
                                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}}}}
    resolved = dg.validate_run_config(job, {**BACKFILL_CONFIG, "execution": execution})
    assert resolved["execution"]["k8s"]["job_namespace"] == "helios"
    # The step's op config is the same whichever executor runs it.
    assert resolved["ops"]["backfill_candles"]["config"]["symbol"] == "BTC/USDT"
    with pytest.raises(dg.DagsterInvalidConfigError, match="job_namespce"):
        dg.validate_run_config(job, {**BACKFILL_CONFIG,
                                     "execution": {"config": {"job_namespce": "helios"}}})


def test_celery_executor_run_config(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    job = _backfill_job(settings, "celery")
    assert job.executor_def.name == "celery_executor"
    monkeypatch.setenv(BROKER_ENV, BROKER)
    resolved = dg.validate_run_config(job, BACKFILL_CONFIG)
    assert resolved["execution"]["celery_executor"]["broker"] == BROKER
    # The broker is bound from the environment: a run's own execution config does not replace it.
    other = dg.validate_run_config(job, {**BACKFILL_CONFIG,
                                         "execution": {"config": {"broker": "pyamqp://x@y//"}}})
    assert other["execution"]["celery_executor"]["broker"] == BROKER
    monkeypatch.delenv(BROKER_ENV)
    with pytest.raises(dg.DagsterInvalidConfigError, match=BROKER_ENV):
        dg.validate_run_config(job, BACKFILL_CONFIG)


def test_every_job_takes_the_chosen_executor(settings: Settings) -> None:
    defs = build_defs(Settings(**{**settings.__dict__, "dagster_executor": "k8s"}))
    jobs = list(defs.get_repository_def().get_all_jobs())
    assert len(jobs) > 3
    assert {job.executor_def.name for job in jobs} == {"k8s"}


def test_executor_setting_is_validated() -> None:
    assert Settings.from_env({"HELIOS_DAGSTER_EXECUTOR": "celery"}).dagster_executor == "celery"
    with pytest.raises(SettingsError, match=r"HELIOS_DAGSTER_EXECUTOR='spark'.*multiprocess"):
        Settings.from_env({"HELIOS_DAGSTER_EXECUTOR": "spark"})


def _values() -> dict[str, Any]:
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    assert isinstance(values, dict)
    return values


def test_helm_values_run_the_project_image_and_module() -> None:
    values = _values()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == "helios_pipeline.definitions"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'module_name = "helios_pipeline.definitions"' in pyproject  # the same code location
    assert deployment["image"]["repository"].endswith("/helios")
    assert "helios_pipeline" in (DEPLOY / "k8s" / "Dockerfile").read_text()
    env = {item["name"]: item["value"] for item in deployment["env"]}
    Settings.from_env(env)  # every HELIOS_* value the chart sets is one Settings accepts
    assert env["HELIOS_DAGSTER_EXECUTOR"] == "k8s"
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["concurrency"]["enabled"] is True
    assert values["concurrency"]["runs"]["maxConcurrentRuns"] == 8
    assert values["concurrency"]["pools"]["defaultLimit"] == 2


def _literal_secrets(node: object, key: str = "") -> list[str]:
    """Keys like ``*password``/``*token``/``*key`` holding a literal string (not an env ref)."""
    if isinstance(node, dict):
        return [found for k, v in node.items() for found in _literal_secrets(v, str(k))]
    if isinstance(node, list):
        return [found for item in node for found in _literal_secrets(item, key)]
    secret_like = re.search(r"(password|token|secret|key)$", key.lower())
    return [key] if secret_like and isinstance(node, str) else []


def test_helm_values_take_secrets_from_kubernetes_secrets() -> None:
    values = _values()
    assert values["postgresql"]["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]
    assert "postgresqlPassword" not in values["postgresql"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    secrets = [s["name"] for s in deployment["envSecrets"]]
    assert secrets == [s["name"] for s in
                       values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]]
    # No literal credential anywhere: no URL with a password, no password/token/key values.
    for path in (DEPLOY / "k8s").iterdir():
        for line in path.read_text().splitlines():
            content = line.split("#")[0]  # comments may show the form of a URL
            assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", content), (path, line)
        if path.suffix == ".yaml":
            assert not _literal_secrets(yaml.safe_load(path.read_text())), path
    for item in deployment["env"]:
        assert not re.search(r"URL$|KEY$|PASSWORD$|TOKEN$", item["name"]), item


def test_deploy_extra_pins_dagster_libraries() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"dagster==1.13.27"' in pyproject
    for lib in ("dagster-k8s", "dagster-celery"):
        assert pyproject.count(f'"{lib}==0.29.27"') == 2  # deploy and dev extras
