"""The test browsers keep their temp files in the run's own directory (removed when the run ends), never in /tmp:
Chromium's temp files (``FileSystemWritableStream-*`` up to 40 MiB each, the profile's singleton socket directory)
outlive the browsers a test kills, and 1.7 GB had piled up in /tmp."""

from __future__ import annotations

from pathlib import Path

from .conftest import Browser


def test_chromium_takes_its_temp_directory_from_the_run(browser: Browser, browser_temp: Path) -> None:
    # Chromium creates the profile's singleton socket in a fresh directory of its temp directory (base::GetTempDir,
    # the one every temp file of it goes to) and links it from the profile.
    socket = (browser.profile / "SingletonSocket").readlink()
    assert socket.parent.parent == browser_temp, f"{socket} is not in the run's browser temp {browser_temp}"
    assert socket.parent.name.startswith("org.chromium.Chromium.")
    assert (browser_temp / socket.parent.name / "SingletonSocket").is_socket()
