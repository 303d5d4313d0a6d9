"""Worker ↔ page messages: what pages send is parsed strictly; what the worker sends is plain JSON."""

from __future__ import annotations

import json

import pytest

from browser_py.engine.owner import Someone
from wire.messages import (
    AddFiles,
    Bye,
    CardAction,
    ChooseFile,
    EngineReady,
    HandOffPart,
    HandOffRequest,
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


def test_a_hand_off_names_the_folder_of_the_uploads_owner() -> None:
    """The page reads the parts from the browser's copy, which is in its owner's folder (``uploads-<key>`` for a
    signed-in user): a page that looked in ``uploads`` would find nothing and refuse every signed-in hand-off."""
    owner = Someone("k1").directory
    request = HandOffRequest("L", "smartcat-upload|S|t", "big.bin", (HandOffPart(2, 5, 5, "/store/u/p", "c2"),), owner)
    sent = json.loads(to_json(request))
    assert sent["type"] == "handoff" and sent["directory"] == "uploads-k1"
    assert sent["parts"] == [{"number": 2, "offset": 5, "length": 5, "url": "/store/u/p", "checksum_sha256": "c2"}]
