"""Reusable test machinery: a real SeaweedFS on free ports and the real server in a background thread.

``tests/conftest.py`` turns these into fixtures; ``e2e/`` and engine integration tests import them too:

- :func:`tests.support.seaweed.start_seaweed` -> :class:`tests.support.seaweed.SeaweedService`
- :func:`tests.support.live_server.isolated_settings` builds :class:`server.settings.Settings` from arguments only
- :class:`tests.support.live_server.LiveServer` runs ``create_app(settings)`` under uvicorn; ``restart()`` keeps
  its port and its database
"""
