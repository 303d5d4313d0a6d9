import json
import random

import pytest

from browser_py.engine.manifest import Manifest, ManifestError
from wire.plan import MiB, plan_parts


def sample() -> Manifest:
    return Manifest(
        local_id="abc",
        file_name="report ünïcode.pdf",
        size=20 * MiB + 3,
        content_type="application/pdf",
        fingerprint="fp1-xyz",
        last_modified_ms=1_700_000_000_123,
        created_at=12.5,
        staged=True,
        session_id="s-1",
        object_key="uploads/u/s-1",
        part_size=8 * MiB,
        part_count=3,
        parts={1: '"etag-1"', 3: '"etag-3"'},
    )


def test_round_trip_keeps_everything() -> None:
    m = sample()
    back = Manifest.from_json(m.to_json())
    assert back == m
    assert back.bytes_confirmed == 8 * MiB + 4 * MiB + 3


def test_fresh_manifest_without_session_round_trips() -> None:
    m = Manifest("id", "a", 0, "application/octet-stream", "fp")
    assert Manifest.from_json(m.to_json()) == m
    assert m.bytes_confirmed == 0


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(v=99), "version"),
        (lambda d: d.pop("size"), "damaged"),
        (lambda d: d.update(size="big"), "damaged"),
        (lambda d: d.update(size=True), "damaged"),
        (lambda d: d.update(parts={"7": "x"}), "outside"),
        (lambda d: d.update(part_count=2), "damaged"),  # inconsistent with size and part size
        (lambda d: d.update(part_size=None, part_count=None), "no part plan"),
    ],
)
def test_damaged_manifests_are_refused(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(sample().to_json())
    mutate(data)
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(json.dumps(data))


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", "null"])
def test_non_manifests_are_refused(text: str) -> None:
    with pytest.raises(ManifestError):
        Manifest.from_json(text)


@pytest.mark.parametrize("size", [0, 1, 8 * MiB - 1, 8 * MiB, 8 * MiB + 1, 100 * MiB + 3, 5 * 1024**4])
def test_bytes_confirmed_is_the_length_of_every_confirmed_part(size: int) -> None:
    """Counted without a sum over the parts (it is read on every event): the same as summing the plan's lengths,
    with and without the shorter last part."""
    plan = plan_parts(size, 8 * MiB)
    rng = random.Random(size)
    count = plan.part_count
    for parts in ([], [1], [count], list(range(1, min(count, 60) + 1)), rng.sample(range(1, count + 1), min(count, 7))):
        m = Manifest("L", "f", size, "x", "fp", part_size=plan.part_size, part_count=count,
                     parts=dict.fromkeys(parts, "e"))
        assert m.bytes_confirmed == sum(plan.length_of(n) for n in set(parts)), parts
