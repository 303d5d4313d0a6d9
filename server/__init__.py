"""The presign service: FastAPI app that plans S3 multipart uploads and hands out presigned part URLs.

Bytes never pass through this server: browsers PUT parts straight to S3 with the URLs it signs.
"""
