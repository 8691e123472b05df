"""`python -m gaia.faults --runs N --seed S --app redis ...` (see gaia.faults.cli)."""

import sys

from gaia.faults.cli import main

sys.exit(main())
