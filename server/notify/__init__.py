"""Telling users an upload is done when they are not looking: Web Push, email, and the policy around them.

``policy`` (pure decisions and wording), ``webpush`` and ``mail`` (the channels), ``notifier`` (the outbox consumer
plus the batching sender) and ``service`` (what the app starts and stops). Their tables are in :mod:`server.models`,
the links to status pages in :mod:`server.links`.
"""
