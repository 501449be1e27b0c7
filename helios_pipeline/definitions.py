"""Code location loaded by ``workspace.yaml`` and ``dagster dev``."""

from helios_pipeline.defs.build import build_defs

defs = build_defs()
