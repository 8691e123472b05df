"""`python -m gaia.cluster [--cleanup [--force]]`: list or remove namespace runs."""

from gaia.cluster.netns import main

raise SystemExit(main())
