"""``python -m app``: the same as the ``segstudio`` command."""

from app.launch import main

raise SystemExit(main())
