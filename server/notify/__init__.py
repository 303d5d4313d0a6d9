"""Telling users an upload is done when they are not looking: Web Push, email, and the policy around them.

``models`` (profiles, push subscriptions, the per-upload ledger), ``policy`` (pure decisions and wording),
``webpush`` and ``mail`` (the channels), ``notifier`` (the outbox consumer plus the batching sender) and ``service``
(what the app starts and stops).
"""
