"""``python -m examples.host``: the example host on http://127.0.0.1:8000 (see examples/host/app.py)."""

from examples.host.app import main

raise SystemExit(main())
