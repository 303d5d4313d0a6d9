"""The upload engine: a sans-I/O core (``browser_py.engine``), an async driver, and adapters for CPython and Pyodide."""
