"""web/wire.d.ts is what TypeScript hosts know of the Python types: it must be exactly what the types generate."""

from __future__ import annotations

import dataclasses

from wire import messages, tsdecl, view


def test_the_committed_wire_d_ts_matches_the_python_types() -> None:
    assert tsdecl.OUTPUT.read_text(encoding="utf-8") == tsdecl.render(), (
        "web/wire.d.ts is stale: run `python -m wire.tsdecl` and commit it"
    )


def test_every_view_field_and_message_is_declared() -> None:
    text = tsdecl.render()
    for field in dataclasses.fields(view.UploadView):
        assert f"  readonly {field.name}: " in text
    for cls in (*messages.WORKER_MESSAGES, *messages.PAGE_MESSAGES):
        assert f"export interface {cls.__name__} {{\n" in text
        assert f'  readonly type: "{cls.type}";' in text
