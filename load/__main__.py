"""``python -m load`` (see :mod:`load.run`)."""

from load.run import main

raise SystemExit(main())
