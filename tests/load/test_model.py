"""The session load model's arithmetic (load/model.py): when a simulated browser makes each request of a file."""

from __future__ import annotations

import random

import pytest

from load.model import SessionModel, Step

MiB = 1024 * 1024


def _kinds(steps: list[Step]) -> list[str]:
    return [step.kind for step in steps]


def test_a_whole_file_is_one_create_a_url_batch_per_16_parts_paced_puts_and_one_complete() -> None:
    model = SessionModel(parts=48, part_bytes=8 * MiB, user_mbps=20.0)
    steps = model.steps()
    assert model.part_seconds == pytest.approx(3.3554432)  # 8 MiB at 20 Mbit/s
    assert _kinds(steps).count("create") == 1 and steps[0] == Step("create", -1, 0.0)
    assert [s.part for s in steps if s.kind == "urls"] == [0, 16, 32]
    puts = [s for s in steps if s.kind == "put"]
    assert [s.part for s in puts] == list(range(48))
    assert [s.at for s in puts] == pytest.approx([(n + 1) * model.part_seconds for n in range(48)])
    assert steps[-1] == Step("complete", -1, puts[-1].at)
    # Each batch's URLs are asked for as its first part starts, a part's time before that part's PUT.
    for urls in (s for s in steps if s.kind == "urls"):
        first_put = next(s for s in puts if s.part == urls.part)
        assert steps.index(urls) < steps.index(first_put)
        assert first_put.at - urls.at == pytest.approx(model.part_seconds)
    assert "status" not in _kinds(steps)


def test_the_request_rates_follow_from_the_link() -> None:
    model = SessionModel(parts=48, user_mbps=20.0, resume_rate=0.1)
    assert model.server_requests_per_file == pytest.approx(5.1)  # create, 3 URL batches, 0.1 status, complete
    assert model.server_requests_per_user_second == pytest.approx(5.1 / (48 * 3.3554432))
    assert 500 * model.server_requests_per_user_second == pytest.approx(15.8, abs=0.1)
    assert 500 * model.puts_per_user_second == pytest.approx(149.0, abs=0.1)
    # Four times the link, four times every rate.
    fast = SessionModel(parts=48, user_mbps=80.0, resume_rate=0.1)
    assert fast.part_seconds == pytest.approx(model.part_seconds / 4)
    assert fast.server_requests_per_user_second == pytest.approx(4 * model.server_requests_per_user_second)


def test_a_file_joined_midway_asks_urls_for_the_batch_it_is_in_and_sends_only_what_is_left() -> None:
    steps = SessionModel(parts=48).steps(first_part=20)
    assert [s.part for s in steps if s.kind == "urls"] == [20, 32]
    assert [s.part for s in steps if s.kind == "put"] == list(range(20, 48))


def test_a_resumed_file_asks_its_status_right_before_the_part_it_resumes_at() -> None:
    steps = SessionModel(parts=48).steps(resume_before=30)
    status = steps.index(next(s for s in steps if s.kind == "status"))
    assert steps[status - 1] == next(s for s in steps if s.kind == "put" and s.part == 29)
    assert steps[status + 1] == next(s for s in steps if s.kind == "put" and s.part == 30)
    assert steps[status].at == steps[status + 1].at


def test_drawn_files_resume_at_the_rate_asked_and_always_after_a_stored_part() -> None:
    rng = random.Random(7)
    never, always = SessionModel(resume_rate=0.0), SessionModel(resume_rate=1.0)
    assert not any("status" in _kinds(never.draw(rng, first_file=False)) for _ in range(200))
    for _ in range(200):
        steps = always.draw(rng, first_file=True)
        kinds = _kinds(steps)
        first_put = kinds.index("put")
        assert kinds.count("status") == (1 if kinds.count("put") > 1 else 0)
        if "status" in kinds:
            assert kinds.index("status") > first_put
    # A user's first file starts anywhere in the file; the next ones at the first part.
    firsts = {always.draw(rng, first_file=True)[2].part for _ in range(400)}
    assert len(firsts) > 40 and min(firsts) == 0
    assert {always.draw(rng, first_file=False)[2].part for _ in range(20)} == {0}


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"LOAD_PARTS": "0"}, "LOAD_PARTS"),
        ({"LOAD_USER_MBPS": "0"}, "LOAD_USER_MBPS"),
        ({"LOAD_USER_MBPS": "fast"}, "fast"),
        ({"LOAD_RESUME_RATE": "1.5"}, "LOAD_RESUME_RATE"),
    ],
)
def test_a_bad_setting_is_refused_with_its_name(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        SessionModel.from_environment(environ)


def test_unset_settings_give_the_documented_defaults() -> None:
    model = SessionModel.from_environment({})
    assert (model.parts, model.part_bytes, model.user_mbps, model.resume_rate) == (48, 8 * MiB, 20.0, 0.1)
