"""``python -m server.scan``: the malware scanner as its own process, for servers started with
``SCAN_IN_PROCESS=false``.

It reads the same settings as the server (environment or ``.env``: ``DATABASE_URL``, the S3 settings, ``CLAMD_*``,
``SCAN_*``) and runs the same leased loop, so any number of these processes and of servers share the quarantined
objects, each scanned once; one killed mid-scan lets go when its lease (``SCAN_LEASE_SECONDS``) runs out and another
scans the object again. It does not migrate the database (the servers do) and stops cleanly on SIGTERM or SIGINT,
handing back what it holds.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from pydantic import ValidationError

from server.db import Database
from server.scan.worker import scan_worker
from server.settings import Settings
from server.storage import storage_for

log = logging.getLogger("server.scan")


async def run(settings: Settings) -> None:
    """Scan until SIGTERM/SIGINT."""
    database = Database(settings.resolved_database_url)
    worker = scan_worker(settings, database, storage_for(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    problem = await asyncio.to_thread(worker.ready)
    if problem:
        log.warning("clamd does not answer yet (%s): quarantined uploads wait until it does", problem)
    worker.start()
    log.info("scanner started: clamd at %s, claimant %s", worker.clamd.address, worker.instance)
    try:
        await stop.wait()
    finally:
        await worker.stop()
        database.dispose()
        log.info("scanner stopped")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"invalid settings: {error}", file=sys.stderr)
        return 2
    if settings.scan != "clamd":
        print(f"SCAN={settings.scan}: a scanner process needs SCAN=clamd (as its servers have)", file=sys.stderr)
        return 2
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
