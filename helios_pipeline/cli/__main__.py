"""``python -m helios_pipeline.cli``: the ``helios`` command (used to start stream shards)."""

import sys

from helios_pipeline.cli.main import main

sys.exit(main())
