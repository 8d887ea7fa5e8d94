"""Property: whatever bytes a signed gate sends to POST /v1/entries, the server
answers 200 or a named 4xx, never a 5xx, and stores only what it acknowledged."""
from __future__ import annotations

import gzip
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.store import Store
from sync.admin import Admin
from sync.client import enroll, wire
from sync.server import Settings
from sync.testing import ServerThread, fill, signed_request

TOKEN = "fuzz-admin-token"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    with ServerThread(Settings(db_url=str(tmp / "township.db"), admin_token=TOKEN)) as srv:
        admin = Admin(srv.url, TOKEN)
        creds = enroll(srv.url, admin.enrollment("c", "g")["token"])
        store = Store.open(tmp / "gate.db")
        store.conn.execute("PRAGMA synchronous = OFF")
        template = wire(fill(store, creds.device_id, 1, random.Random(1))[0])
        yield srv, admin, creds, template
        store.close()
        admin.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)


@st.composite
def mutated_batches(draw, template):
    entries = []
    for seq in range(1, draw(st.integers(0, 4)) + 1):
        e = dict(template, seq=seq)
        for _ in range(draw(st.integers(0, 2))):
            key = draw(st.sampled_from(sorted(e) + ["bogus"]))
            if draw(st.booleans()):
                e.pop(key, None)
            else:
                e[key] = draw(json_values)
        entries.append(e)
    body = {"entries": entries}
    if draw(st.booleans()):
        body["priority"] = draw(json_values)
    return json.dumps(body).encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_any_body_gets_200_or_a_named_4xx(world, data):
    srv, admin, creds, template = world
    kind = data.draw(st.sampled_from(["bytes", "json", "batch"]))
    if kind == "bytes":
        body = data.draw(st.binary(max_size=300))
    elif kind == "json":
        body = json.dumps(data.draw(json_values)).encode()
    else:
        body = data.draw(mutated_batches(template))
    zipped = data.draw(st.booleans())
    before = len(admin.entries(creds.device_id))
    r = signed_request(srv.url, creds, "POST", "/v1/entries", gzip.compress(body) if zipped else body,
                       headers={"Content-Encoding": "gzip"} if zipped else None)
    assert r.status_code == 200 or 400 <= r.status_code < 500, r.text
    assert r.json().get("error") or "acked_seq" in r.json()
    after = admin.entries(creds.device_id)
    if r.status_code != 200:
        assert len(after) == before  # nothing half-stored
    else:
        assert len(after) >= before and r.json()["acked_seq"] <= max([0] + [e["seq"] for e in after])
