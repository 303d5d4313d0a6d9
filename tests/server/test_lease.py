"""Leases under real concurrency: threads with their own connections and transactions race for the same rows on the
database under test (SQLite by default, PostgreSQL with ``--db=postgresql``), and each row goes to exactly one."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

import pytest
from sqlalchemy import select, text

from server.clock import utcnow
from server.db import Database
from server.lease import Claimant
from server.models import OutboxEvent
from server.outbox import DELIVERY_LEASE

HOLD = timedelta(minutes=5)
THREADS = 8
ROWS = 40

T = TypeVar("T")


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    db.migrate()
    yield db
    db.dispose()


def add_events(database: Database, count: int) -> list[int]:
    with database.sessions() as db:
        rows = [
            OutboxEvent(event_id=f"event-{n}", type="upload_completed", session_id=f"s{n}", owner_id="u", payload="{}")
            for n in range(count)
        ]
        db.add_all(rows)
        db.commit()
        return [row.id for row in rows]


def holders(database: Database) -> dict[int, str | None]:
    with database.sessions() as db:
        return {pk: token for pk, token in db.execute(select(OutboxEvent.id, OutboxEvent.claim_token))}


def race(work: Callable[[int], T], threads: int = THREADS) -> list[T]:
    """Run ``work(i)`` in ``threads`` threads released at the same moment; their results in thread order."""
    start = threading.Barrier(threads)

    def run(i: int) -> T:
        start.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(run, range(threads)))


def test_of_concurrent_claimants_exactly_one_takes_each_row(database: Database) -> None:
    ids = add_events(database, ROWS)
    claimant = Claimant()

    def claim_each(i: int) -> list[tuple[int, str]]:
        """One claimant's transactions, one per row, in its own order: the rows it won, with its tokens."""
        won = []
        order = random.Random(i).sample(ids, len(ids))
        with database.sessions() as db:
            for pk in order:
                token = claimant.token()
                taken = DELIVERY_LEASE.claim(db, OutboxEvent.id == pk, token=token, now=utcnow(), hold=HOLD)
                db.commit()
                assert taken in (0, 1)
                if taken:
                    won.append((pk, token))
        return won

    wins = [win for per_thread in race(claim_each) for win in per_thread]
    assert Counter(pk for pk, _ in wins) == Counter(ids), "every row claimed exactly once"
    assert holders(database) == dict(wins), "the database names each row's one winner"
    assert not any(race(claim_each)), "a held row is not taken again before its deadline"


def test_concurrent_batch_claims_split_the_rows_without_overlap(database: Database) -> None:
    """The outbox dispatcher's way: one UPDATE takes a whole batch of ids; several dispatchers' batches overlap."""
    ids = add_events(database, ROWS)
    claimant = Claimant()

    def claim_batch(i: int) -> tuple[str, int]:
        token = claimant.token()
        batch = ids if i % 2 == 0 else list(reversed(ids))
        with database.sessions() as db:
            taken = DELIVERY_LEASE.claim(db, OutboxEvent.id.in_(batch), token=token, now=utcnow(), hold=HOLD)
            db.commit()
        return token, taken

    results = race(claim_batch)
    held = holders(database)
    for token, taken in results:
        assert sum(1 for holder in held.values() if holder == token) == taken
    assert sum(taken for _, taken in results) == ROWS
    assert all(holder is not None for holder in held.values())


def test_an_expired_lease_is_taken_over_by_exactly_one(database: Database) -> None:
    [pk] = add_events(database, 1)
    claimant = Claimant()
    with database.sessions() as db:
        then = utcnow() - 2 * HOLD
        assert DELIVERY_LEASE.claim(db, OutboxEvent.id == pk, token="dead-1", now=then, hold=HOLD) == 1
        db.commit()

    def take_over(_i: int) -> str | None:
        token = claimant.token()
        with database.sessions() as db:
            taken = DELIVERY_LEASE.claim(db, OutboxEvent.id == pk, token=token, now=utcnow(), hold=HOLD)
            db.commit()
        return token if taken else None

    winners = [token for token in race(take_over) if token is not None]
    assert len(winners) == 1
    assert holders(database) == {pk: winners[0]}


def wait_until_blocked_on_a_lock(database: Database, timeout: float = 30.0) -> None:
    """Until a PostgreSQL backend other than ours waits for a row lock (what the second claimant must be doing)."""
    deadline = time.monotonic() + timeout
    with database.engine.connect() as connection:
        while True:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            connection.rollback()
            if waiting:
                return
            assert time.monotonic() < deadline, "the second claim never waited for the first"
            time.sleep(0.01)  # polling a condition, not standing in for one


@pytest.mark.parametrize("first_commits", [True, False], ids=["first-commits", "first-rolls-back"])
def test_a_claim_waiting_on_an_uncommitted_claim_sees_its_outcome(database: Database, first_commits: bool) -> None:
    """PostgreSQL: the second UPDATE blocks on the first one's row lock, then re-checks the lease on the row as the
    first transaction left it: taken if it committed (the second gets 0), open if it rolled back (the second wins)."""
    if database.is_sqlite:
        pytest.skip("SQLite runs one writer at a time and does not show who waits; run with --db=postgresql")
    [pk] = add_events(database, 1)
    with database.sessions() as first:
        assert DELIVERY_LEASE.claim(first, OutboxEvent.id == pk, token="first-1", now=utcnow(), hold=HOLD) == 1

        def second_claim() -> int:
            with database.sessions() as second:
                taken = DELIVERY_LEASE.claim(second, OutboxEvent.id == pk, token="second-1", now=utcnow(), hold=HOLD)
                second.commit()
                return taken

        with ThreadPoolExecutor(1) as pool:
            second = pool.submit(second_claim)
            wait_until_blocked_on_a_lock(database)
            assert not second.done()
            if first_commits:
                first.commit()
            else:
                first.rollback()
            taken = second.result(timeout=30)
    assert taken == (0 if first_commits else 1)
    assert holders(database) == {pk: "first-1" if first_commits else "second-1"}
