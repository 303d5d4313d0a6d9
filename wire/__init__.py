"""The contract between the browser engine, the command-line uploader and the server.

Pure Python with no third-party imports: it ships in the server package and in the engine wheel Pyodide loads, so
both sides cut parts with the same :func:`wire.plan.plan_parts` and read each other's JSON with the same types.
"""
