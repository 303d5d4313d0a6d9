"""Adapters that carry out the core's commands on a real platform: ``cpython`` (httpx, files) and ``pyodide``."""
