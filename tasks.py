"""GAIA's tasks (invoke). On a fresh clone run `python3 tasks.py <task>`: it installs what
is missing (Debian packages, a virtualenv) and then runs the task with invoke. Afterwards
`.venv/bin/invoke <task>` (or `invoke` inside the activated virtualenv) does the same.

    python3 tasks.py reproduce --quick   # the main job: measure, render figures, report
    python3 tasks.py test                # the test suite
    python3 tasks.py --list              # every task
"""

if __name__ == "__main__":
    from gaia.bootstrap import main

    raise SystemExit(main())

from gaia.tasks import collection

ns = collection()
