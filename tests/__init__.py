"""Test suite; ``tests.support`` holds fixtures' machinery reused by ``e2e/`` and engine integration tests."""
