"""``python -m authgate`` is the ``authgate`` command."""

from authgate.cli.launcher import main

raise SystemExit(main())
