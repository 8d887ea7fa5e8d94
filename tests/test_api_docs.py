"""docs/api.md names everything the local API offers: its routes, commands, fields, forms and events."""
from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from kiosk import config
from kiosk.api import CommandBody
from kiosk.checkpoint import COMMANDS
from kiosk.codes import keys, trust
from kiosk.daemon import Daemon, Options
from kiosk.records import RECORDS

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def openapi(tmp_path_factory):
    """The OpenAPI document as a running gate serves it on its Unix socket."""
    tmp = tmp_path_factory.mktemp("api")
    key = keys.generate("Ed25519")
    (tmp / "trust.json").write_text(json.dumps({"keys": [trust.entry_for(key.public_key(), ["health"])]}))
    cfg = config.load(env={})
    cfg["gate"].update(device_id="east-1", community="lotus-garden")
    daemon = Daemon(cfg, Options(db=str(tmp / "g.db"), camera="sim", port="sim", trust=str(tmp / "trust.json"),
                                 api_socket=str(tmp / "api.sock")))
    daemon.start()
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(tmp / "api.sock")), base_url="http://gate") as c:
            r = c.get("/openapi.json", timeout=10)
    finally:
        daemon.stop()
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    return r.json()


def test_the_openapi_document_is_served_and_every_route_is_documented(openapi):
    assert openapi["openapi"].startswith("3.") and openapi["info"]["title"] == "gate local API"
    routes = [(method.upper(), path) for path, methods in openapi["paths"].items() for method in methods]
    assert ("GET", "/v1/events") in routes and ("POST", "/v1/commands/{name}") in routes
    # named as `GET /path` (or `GET /path?query…`) in the routes table
    missing = [f"{m} {p}" for m, p in routes if not re.search(f"`{m} {re.escape(p)}[`?]", DOC)]
    assert not missing, f"docs/api.md does not name {missing}"
    assert "`GET /openapi.json`" in DOC


def test_every_command_and_field_is_documented():
    assert not [c for c in COMMANDS if f"| `{c}` |" not in DOC and f"`{c}`" not in DOC]
    assert not [c for c in COMMANDS if f"/v1/commands/{c}" not in DOC], "every command has an example"
    assert not [f for f in CommandBody.model_fields if f"`{f}`" not in DOC]


def test_every_form_and_its_fields_are_documented():
    for form, record in RECORDS.items():
        row = next((line for line in DOC.splitlines() if line.startswith(f"| `{form}`")), None)
        assert row is not None, f"no row for the {form} form"
        assert not [f for f in record.FIELDS if f"`{f}`" not in row], (form, row)
        assert f'"form": "{form}"' in DOC, f"no example of the {form} form"


def test_every_event_type_is_documented_with_an_example():
    source = (ROOT / "kiosk" / "checkpoint.py").read_text(encoding="utf-8")
    emitted = set(re.findall(r'_emit\(\s*"(\w+)"', source)) | {"hello"}
    assert {"state", "code", "reading", "decision", "alarm"} <= emitted
    assert not [t for t in sorted(emitted) if f"| `{t}` |" not in DOC], "each type in the table"
    assert not [t for t in sorted(emitted) if f"event: {t}\ndata: " not in DOC], "each type with an example"
    for line in DOC.splitlines():  # every example is one JSON object, as a client parses it
        if line.startswith("data: "):
            assert json.loads(line[6:])["type"] in emitted


def test_every_refusal_code_is_documented():
    """A 409's `error` is a stable code: each one the gate can give is in the errors table."""
    import kiosk.api
    import kiosk.checkpoint
    from kiosk.reasons import SHIFT_TEXT
    sources = Path(kiosk.checkpoint.__file__).read_text() + Path(kiosk.api.__file__).read_text()
    codes = set(re.findall(r'CommandError\("([a-z_]+)"', sources)) | set(SHIFT_TEXT)
    assert {"check_under_way", "not_measuring", "invalid_form", "gate_busy"} <= codes
    errors = DOC.split("## Errors")[1]
    assert not sorted(c for c in codes if f"`{c}`" not in errors and f"\"error\": \"{c}\"" not in errors)
