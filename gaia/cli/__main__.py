from gaia.cli import main

raise SystemExit(main())
