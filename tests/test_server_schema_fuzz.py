"""Schema-driven fuzzing of the whole OpenAPI document (schemathesis), against the real
server on 127.0.0.1: valid and invalid requests for every operation, signed as an
enrolled gate or sent with the administrator token where the operation needs it (and
now and then without). Every answer is a success or a named 4xx, never a 5xx, and
none takes long. Replay a failure with GATE_TEST_SEED=<the seed printed>; more
examples with GATE_FUZZ_EXAMPLES (200 by default; 150 took 13 s on the shared 2-core dev box)."""
from __future__ import annotations

import contextlib
import gzip
import json
import os
import random
import tempfile
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from sync import auth
from sync.admin import Admin
from sync.client import enroll
from sync.server import Settings
from sync.testing import ServerThread

TOKEN = os.environ.get("GATE_FUZZ_TOKEN", "schema-fuzz-admin-token")
SEED = int(os.environ.get("GATE_TEST_SEED") or random.randrange(2**32))
SLOW_S = 10.0  # an answer slower than this means the server stalled (the old lost-range bug took hours)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A server in this process, or the one at GATE_FUZZ_URL with the admin token in
    GATE_FUZZ_TOKEN (bench/bench_sync.py measures that server's memory under the fuzzer)."""
    url = os.environ.get("GATE_FUZZ_URL")
    with contextlib.ExitStack() as stack:
        if not url:
            tmp = tmp_path_factory.mktemp("schema-fuzz")
            url = stack.enter_context(ServerThread(Settings(db_url=str(tmp / "township.db"),
                                                            admin_token=TOKEN))).url
        admin = stack.enter_context(contextlib.closing(Admin(url, TOKEN)))
        creds = enroll(url, admin.enrollment("fuzz", "east")["token"])
        admin.set_policy("fuzz", risk_level="low")
        yield creds, stack.enter_context(httpx.Client(base_url=url, timeout=60))


def _operations():
    from sync.server import create_app
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(db_url=f"{tmp}/schema.db", admin_token=TOKEN))
        schema = schemathesis.openapi.from_dict(app.openapi())
        app.state.server.db.close()
    return [op.ok() for op in schema.get_all_operations()]


OPERATIONS = _operations()
CASES = st.one_of([op.as_strategy(generation_mode=mode) for op in OPERATIONS
                   for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)])


def send(http: httpx.Client, creds, case, rng: random.Random) -> httpx.Response:
    kw = case.as_transport_kwargs(base_url=str(http.base_url).rstrip("/"))
    headers = {k: v for k, v in kw["headers"].items() if k.lower() not in ("connection", "accept-encoding")}
    if "json" in kw:
        body = json.dumps(kw["json"]).encode()
    else:
        data = kw.get("data", b"")
        body = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else (data or b"")
    path = kw["url"][len(str(http.base_url).rstrip("/")):]
    request = http.build_request(kw["method"], path, params=kw.get("params") or None, content=body,
                                 headers=headers)
    target = request.url.raw_path.decode()
    if path.startswith("/v1/admin/"):
        if rng.random() < 0.9:
            request.headers["Authorization"] = f"Bearer {TOKEN}"
    elif path == "/v1/enroll":  # signed by a new key, as `gate enroll` does
        request.headers.update(auth.sign_headers(auth.new_device_key(), "enroll", "POST", target, body))
    elif path != "/v1/time":
        if path == "/v1/entries" and rng.random() < 0.5:
            body = gzip.compress(body)
            request = http.build_request(kw["method"], path, params=kw.get("params") or None, content=body,
                                         headers={**headers, "Content-Encoding": "gzip"})
        request.headers.update(auth.sign_headers(creds.key(), creds.device_id, request.method, target, body))
    if path == "/v1/admin/alarms/stream":  # endless when it works: its status and first line answer
        r = http.send(request, stream=True)
        try:
            first = next(r.iter_bytes(), b"") if r.status_code == 200 else r.read()
        finally:
            r.close()
        return httpx.Response(r.status_code, headers=r.headers, content=first)
    return http.send(request)


@seed(SEED)
@settings(max_examples=int(os.environ.get("GATE_FUZZ_EXAMPLES", "200")), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=CASES, data=st.data())
def test_every_operation_answers_a_named_4xx_or_success_and_quickly(world, case, data):
    creds, http = world
    print(f"seed {SEED} (replay: GATE_TEST_SEED={SEED})")
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    t0 = time.perf_counter()
    r = send(http, creds, case, rng)
    took = time.perf_counter() - t0
    what = f"{case.method} {case.formatted_path} -> {r.status_code} {r.text[:300]}"
    assert r.status_code < 500, what
    assert took < SLOW_S, f"{what} took {took:.1f} s"
    if r.status_code >= 400:
        said = r.json()
        assert set(said) == {"error", "detail"} and said["error"], what
