"""``python -m pytest_lambda_slo.emulator``: the same as the ``lambda-slo-emulator`` command."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
