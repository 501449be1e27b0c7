"""Code location loaded by ``workspace.yaml`` and ``dagster dev``.

Configured by the ``HELIOS_*`` variables; its processes (webserver, daemon, runs) also write
warnings, errors and exchange request timings under ``{HELIOS_DATA_DIR}/system/``.
"""

from helios_pipeline.defs.build import build_defs
from helios_pipeline.security.logs import install_redaction
from helios_pipeline.settings import Settings
from helios_pipeline.storage.system_logs import install_system_logs

install_redaction()
_settings = Settings.from_env()
install_system_logs(_settings.data_dir)
defs = build_defs(_settings)
