"""web/wire.js is what the pages know of the Python types: it must be exactly what the types generate."""

from __future__ import annotations

import dataclasses

from wire import jsdoc, messages, view


def test_the_committed_wire_js_matches_the_python_types() -> None:
    assert jsdoc.OUTPUT.read_text(encoding="utf-8") == jsdoc.render(), (
        "web/wire.js is stale: run `python -m wire.jsdoc` and commit it"
    )


def test_every_view_field_is_documented_for_javascript() -> None:
    text = jsdoc.render()
    for field in dataclasses.fields(view.UploadView):
        assert f"}} {field.name}\n" in text
    for cls in (*messages.WORKER_MESSAGES, *messages.PAGE_MESSAGES):
        assert f"@typedef {{object}} {cls.__name__}" in text
        assert f'@property {{"{cls.type}"}} type' in text


def test_the_pages_take_their_words_from_wire_js() -> None:
    """Button labels and the notification offer are the engine's words: no copy of them lives in the page scripts."""
    web = jsdoc.OUTPUT.parent
    scripts = (web / "app.mjs").read_text(encoding="utf-8") + (web / "notify.mjs").read_text(encoding="utf-8")
    for table in (view.ACTION_TEXT, view.NOTIFY_TEXT, view.ENGINE_TEXT):
        for text in table.values():
            if len(text) > 8:  # short words ("Pause") may appear in comments
                assert text.split("{")[0] not in scripts, text
    assert "/files/" not in scripts, "the status page path is built in Python (wire.view.status_page_path)"
