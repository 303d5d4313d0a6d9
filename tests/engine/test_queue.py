from browser_py.engine.queue import Entry, to_start
from browser_py.engine.upload import Phase


def test_starts_the_oldest_queued_uploads_up_to_the_limit() -> None:
    entries = [
        Entry("c", Phase.NEW, 3.0),
        Entry("a", Phase.UPLOADING, 1.0),
        Entry("b", Phase.NEW, 2.0),
        Entry("d", Phase.NEW, 4.0),
    ]
    assert to_start(entries, limit=2) == ["b"]
    assert to_start(entries, limit=3) == ["b", "c"]
    assert to_start(entries, limit=1) == []


def test_paused_failed_and_finished_uploads_free_their_place() -> None:
    entries = [
        Entry("p", Phase.PAUSED, 1.0),
        Entry("f", Phase.FAILED, 2.0),
        Entry("done", Phase.COMPLETED, 3.0),
        Entry("q", Phase.NEW, 4.0),
    ]
    assert to_start(entries, limit=1) == ["q"]


def test_offline_uploads_keep_their_place() -> None:
    assert to_start([Entry("o", Phase.OFFLINE, 1.0), Entry("q", Phase.NEW, 2.0)], limit=1) == []
