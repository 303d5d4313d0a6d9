"""Worker ↔ page messages: what pages send is parsed strictly; what the worker sends is plain JSON."""

from __future__ import annotations

import json

import pytest

from wire.messages import (
    AddFiles,
    Bye,
    CardAction,
    ChooseFile,
    EngineReady,
    Hello,
    MessageError,
    SetConnectivity,
    SummaryChanged,
    parse_page_message,
    to_json,
)
from wire.view import Summary


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "hello"}, Hello()),
        ({"type": "hello", "extended_lifetime": True}, Hello(extended_lifetime=True)),
        ({"type": "hello", "extended_lifetime": "yes"}, Hello(extended_lifetime=False)),
        ({"type": "bye"}, Bye()),
        ({"type": "add", "files": ["f1", "f2"]}, AddFiles(2)),
        ({"type": "action", "local_id": "L", "action": "pause"}, CardAction("L", "pause")),
        ({"type": "connectivity", "online": False}, SetConnectivity(False)),
        ({"type": "choose", "local_id": "L", "files": ["f"]}, ChooseFile("L", 1)),
    ],
)
def test_page_messages_are_parsed(data: dict[str, object], message: object) -> None:
    assert parse_page_message(data) == message


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"type": "launch"}, "unknown message type 'launch'"),
        ({}, "unknown message type None"),
        ({"type": "action", "local_id": 3, "action": "pause"}, "action: local_id and action must be strings"),
        ({"type": "connectivity", "online": "yes"}, "connectivity: online must be true or false"),
        ({"type": "add", "files": None}, "add: files must be a list"),
        ({"type": "choose", "local_id": "L", "files": ["a", "b"]}, "choose: one file for one upload"),
        ({"type": "choose", "files": ["a"]}, "choose: one file for one upload"),
    ],
)
def test_malformed_page_messages_are_refused_with_a_reason(data: dict[str, object], error: str) -> None:
    with pytest.raises(MessageError, match=error.replace("(", r"\(")):
        parse_page_message(data)


def test_worker_messages_carry_their_type_and_nested_models() -> None:
    sent = json.loads(to_json(SummaryChanged(Summary(2, 45.0, "2 uploads · 45%"))))
    assert sent == {"type": "summary", "summary": {"active": 2, "percent": 45.0, "text": "2 uploads · 45%"}}
    ready = json.loads(to_json(EngineReady(800, "abc", True)))
    assert ready == {"type": "engine", "status": "ready", "boot_ms": 800, "instance": "abc", "persistent": True,
                     "uploads": []}
