import pytest

from wire.plan import (
    MAX_OBJECT_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    MiB,
    PartPlan,
    PlanError,
    TiB,
    plan_parts,
)


def assert_covers(plan: PartPlan) -> None:
    parts = plan.parts() if plan.part_count <= 20_000 else [plan.part(1), plan.part(plan.part_count)]
    assert parts[0].offset == 0
    assert plan.part(plan.part_count).end == plan.size
    assert plan.part_count <= MAX_PARTS
    # Equal parts but the last, each at least 5 MiB except the last.
    for part in parts[:-1]:
        assert part.length == plan.part_size >= MIN_PART_SIZE


@pytest.mark.parametrize(
    ("size", "count", "last"),
    [
        (0, 1, 0),
        (1, 1, 1),
        (5 * MiB - 1, 1, 5 * MiB - 1),
        (5 * MiB, 1, 5 * MiB),
        (5 * MiB + 1, 1, 5 * MiB + 1),
        (8 * MiB, 1, 8 * MiB),
        (8 * MiB + 1, 2, 1),
        (64 * MiB, 8, 8 * MiB),
    ],
)
def test_small_plans(size: int, count: int, last: int) -> None:
    plan = plan_parts(size)
    assert plan.part_count == count
    assert plan.part(count).length == last
    assert_covers(plan)


def test_preferred_part_below_s3_minimum_is_raised_to_5_mib() -> None:
    plan = plan_parts(11 * MiB, preferred_part_size=1 * MiB)
    assert plan.part_size == 5 * MiB
    assert plan.part_count == 3
    assert_covers(plan)


@pytest.mark.parametrize("size", [MAX_OBJECT_SIZE, MAX_OBJECT_SIZE - 1, 80 * 1024 * MiB + 7, 1 * TiB])
def test_huge_files_stay_within_10000_parts(size: int) -> None:
    plan = plan_parts(size)
    assert plan.part_count <= MAX_PARTS
    assert plan.part_size % MiB == 0
    assert_covers(plan)


def test_5_tib_plan_is_exact() -> None:
    plan = plan_parts(5 * TiB)
    assert plan.part_size == 525 * MiB  # ceil(5 TiB / 10,000) rounded up to a whole MiB
    assert plan.part_count == 9_987  # 5 TiB / 525 MiB = 9,986.4
    assert plan.part(plan.part_count).end == 5 * TiB


@pytest.mark.parametrize("size", [MAX_OBJECT_SIZE + 1, 6 * TiB, -1])
def test_impossible_sizes_are_refused(size: int) -> None:
    with pytest.raises(PlanError):
        plan_parts(size)


def test_nonpositive_part_size_is_refused() -> None:
    with pytest.raises(PlanError):
        plan_parts(10, preferred_part_size=0)


def test_inconsistent_plan_is_refused() -> None:
    with pytest.raises(PlanError, match="has 2 parts"):
        PartPlan(size=10 * MiB, part_size=8 * MiB, part_count=3)


def test_part_numbers_outside_the_plan_are_refused() -> None:
    plan = plan_parts(20 * MiB)
    with pytest.raises(PlanError):
        plan.part(0)
    with pytest.raises(PlanError):
        plan.part(plan.part_count + 1)
