"""Sans-I/O upload core: pure Python that takes events and returns commands; it never reads a clock or does I/O."""
