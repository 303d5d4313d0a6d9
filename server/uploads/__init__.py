"""``/api/uploads``: sessions of S3 multipart uploads.

``schemas`` (the JSON the API speaks), ``service`` (the one owner of a session's lifecycle), ``reconcile`` (what S3
holds against what the session planned), ``problems`` (refusals and their status codes) and ``router`` (the HTTP
handlers, thin).
"""
