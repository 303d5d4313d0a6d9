"""Whose uploads the engine holds (browser_py/engine/owner.py): what the server's answer means, when to switch."""

from __future__ import annotations

import pytest

from browser_py.engine.owner import (
    ANSWER_STANDS_S,
    SHARED_DIR,
    SIGNED_OUT_DIR,
    Nobody,
    Owner,
    Someone,
    StorageKeyError,
    holder_from_answer,
)

KEY = "0123456789abcdef0123456789abcdef"


def test_the_answer_names_the_holder_and_its_folder() -> None:
    assert holder_from_answer(200, {"key": KEY}) == Someone(KEY)
    assert Someone(KEY).directory == f"{SHARED_DIR}-{KEY}"
    assert Someone("").directory == SHARED_DIR  # anonymous identities: the profile's storage, as before keys
    assert holder_from_answer(401, {"detail": "sign in again"}) == Nobody()
    assert Nobody().directory == SIGNED_OUT_DIR  # files picked while signed out: nobody's to resume later


@pytest.mark.parametrize(
    ("status", "answer"), [(500, None), (503, {"detail": "busy"}), (200, None), (200, {"key": 7}), (404, {})]
)
def test_an_answer_that_cannot_say_keeps_what_is_held(status: int, answer: object) -> None:
    owner = Owner(Someone(KEY))
    assert holder_from_answer(status, answer) is None
    assert not owner.seen(holder_from_answer(status, answer)) and owner.holder == Someone(KEY)


@pytest.mark.parametrize("key", ["../other", "ALICE", "a/b", "abc"])
def test_a_key_that_is_no_folder_name_is_refused(key: str) -> None:
    with pytest.raises(StorageKeyError, match="not a key"):
        holder_from_answer(200, {"key": key})


def test_switching_only_when_someone_else_is_signed_in() -> None:
    owner = Owner(Someone(KEY))
    assert not owner.seen(Someone(KEY))
    assert owner.seen(Nobody()) and owner.holder == Nobody()
    assert not owner.seen(Nobody())
    assert owner.seen(Someone(KEY)) and owner.holder == Someone(KEY)


def test_refusals_that_may_mean_someone_else_are_asked_about_first() -> None:
    assert all(Owner.may_mean_someone_else(s) for s in (401, 403, 404))
    assert not any(Owner.may_mean_someone_else(s) for s in (400, 409, 410, 422, 429, 500))


def test_an_answer_stands_for_the_next_question_only_briefly() -> None:
    """A pick's own answer spares its new session the question; an older one, or none, does not."""
    owner = Owner(Someone(KEY))
    assert not owner.answered_lately(100.0), "never answered"
    owner.seen(Someone(KEY), 100.0)
    assert owner.answered_lately(100.0) and owner.answered_lately(100.0 + ANSWER_STANDS_S)
    assert not owner.answered_lately(100.0 + ANSWER_STANDS_S + 0.01), "too old: asked again"
    assert not owner.answered_lately(99.0), "a clock set back proves nothing"
    owner.seen(None, 100.0 + ANSWER_STANDS_S * 0.9)
    assert not owner.answered_lately(100.0 + ANSWER_STANDS_S * 1.5), "'cannot say now' is no answer"
    owner.seen(Nobody(), 102.0)
    assert owner.holder == Nobody() and owner.answered_lately(102.0), "a switch is an answer about the new holder"
    owner.seen(Someone(KEY))
    assert not owner.answered_lately(102.0), "a holder taken from the last note, not from the server"
