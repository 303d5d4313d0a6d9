"""Load test: Locust users driving upload sessions against one or more server instances (``make load``)."""
