"""Malware scanning of completed uploads: a completed object waits in quarantine until a scanner clears it.

:mod:`server.scan.clamd` talks to ClamAV's daemon; :mod:`server.scan.worker` is the leased background loop that
streams quarantined objects from S3 to it. The verdict is recorded (with the event it announces) by
:func:`server.uploads.service.record_scan`, the one place that changes a session's state.
"""
