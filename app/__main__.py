"""``python -m app``: the same as the ``segstudio`` command."""

from app.cli import main

raise SystemExit(main())
