"""EU Digital COVID Certificate test cases (tests/data/dcc, Apache-2.0, from dgc-testdata).

Every case file is one test. Each asserted step (picture, unprefix, base45, zlib,
COSE/CBOR decode, signature, expiry) must come out as the case expects, and the full
verdict must agree with the steps. Schema and key-usage assertions are reported, not
judged. On failure the per-step table names what went wrong; `gate codes vectors
tests/data/dcc` prints the same tables and the per-step summary.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from devices.camera.picture import qr_texts
from kiosk.codes import conformance

DCC = Path(__file__).resolve().parent / "data" / "dcc"
CASES = conformance.load_cases(DCC)


def test_the_copy_is_complete_and_licensed():
    assert len(CASES) == 237
    for name in ("LICENSE", "NOTICE", "README.md"):
        assert (DCC / name).is_file()
    assert "Apache License" in (DCC / "LICENSE").read_text()


@pytest.mark.parametrize("name,case", CASES, ids=[name for name, _ in CASES])
def test_eu_case(name, case):
    report = conformance.run_case(name, case, qr_texts)
    assert report.ok, "\n" + report.table()
    # What the case asserts about the signature and the expiry, the verdict says too.
    expected = case["EXPECTEDRESULTS"]
    if expected.get("EXPECTEDVERIFY") and expected.get("EXPECTEDEXPIRATIONCHECK"):
        assert report.verdict.valid and report.verdict.kind == "dcc", report.table()
        assert "colour" not in report.verdict.claims  # an EU certificate is not a colour
    judged = {key for key, _ in conformance.CHECKED} - {"EXPECTEDPICTUREDECODE"}  # text, not image
    if any(expected.get(key) is False for key in judged):
        assert not report.verdict.valid, report.table()


def test_every_negative_kind_of_case_is_present():
    """The suite must exercise each refusal step, or a broken step could pass unnoticed."""
    failing = {key for _, case in CASES for key, value in case["EXPECTEDRESULTS"].items()
               if value is False}
    assert {"EXPECTEDUNPREFIX", "EXPECTEDB45DECODE", "EXPECTEDCOMPRESSION", "EXPECTEDDECODE",
            "EXPECTEDVERIFY", "EXPECTEDEXPIRATIONCHECK", "EXPECTEDPICTUREDECODE"} <= failing


# Through the command a guard's tooling would use, as for cases not seen before.
CLI_CASES = ["common/CO1.json", "common/CO2.json", "common/CO3.json", "common/CO5.json",
             "common/CO16.json", "common/CO17.json", "common/CO19.json", "common/CO22.json",
             "common/H2.json", "common/Z2.json", "common/B1.json", "common/CBO1.json",
             "ES/401.json", "DE/1.json", "IS/3.json"]


@pytest.mark.parametrize("name", CLI_CASES)
def test_eu_case_through_gate_codes_verify(gate, tmp_path, name):
    case = json.loads((DCC / name).read_text())
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"keys": [{"certificate": case["TESTCTX"]["CERTIFICATE"],
                                           "purposes": ["dcc"]}]}))
    (tmp_path / "code.txt").write_text(case["PREFIX"])
    out = gate("codes", "verify", "--trust", str(trust), "--at",
               case["TESTCTX"]["VALIDATIONCLOCK"], "--lang", "en", f"@{tmp_path / 'code.txt'}")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    report = conformance.run_case(name, case)
    assert result["valid"] == report.verdict.valid
    assert result["reason"] == (report.verdict.reason.value if report.verdict.reason else None)
    failed = next((s.name for s in report.steps if s.got is False), None)
    assert result["reason"] in {r.value if r else None
                                for r in conformance.REASONS_FOR_STEP[failed]}


def test_a_dcc_gets_a_colour_only_when_the_policy_says_so():
    from kiosk.codes import Verifier, VerifyOptions
    name, case = next((n, c) for n, c in CASES if n == "common/CO1.json")
    clock = conformance.parse_time(case["TESTCTX"]["VALIDATIONCLOCK"])
    plain = Verifier(conformance.trust_for(case)).verify(case["PREFIX"], at=clock)
    assert plain.valid and "colour" not in plain.claims and plain.claims["type"] == "vaccination"
    coloured = Verifier(conformance.trust_for(case), options=VerifyOptions(dcc_colour="green")).verify(
        case["PREFIX"], at=clock)
    assert coloured.claims["colour"] == "green"
    expired = Verifier(conformance.trust_for(case), options=VerifyOptions(dcc_colour="green")).verify(
        case["PREFIX"], at=clock.replace(year=2022))
    assert expired.reason.value == "expired" and "colour" not in expired.claims


def test_gate_codes_vectors_reports_every_step(gate):
    out = gate("codes", "vectors", str(DCC))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    assert "237 of 237 cases" in out.stdout
    for step in ("unprefix", "base45", "compression", "decode", "verify", "expiration"):
        assert f"| {step} |" in out.stdout
