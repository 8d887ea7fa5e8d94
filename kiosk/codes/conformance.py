"""Run EU DCC test cases (dgc-testdata format) step by step against this verifier.

Each case gives the scanned text (PREFIX), a trust anchor (TESTCTX.CERTIFICATE), a
validation clock, and EXPECTEDRESULTS: for each step whether it must succeed. A step
that cannot be reached because an earlier one failed counts as failed. Schema and
key-usage steps concern the EU schema and certificate OIDs, which the gate does not
judge: they are reported as not checked and left out of the verdict.
Used by tests/test_codes_dcc.py and `gate codes vectors DIR`.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import base45, cose, hc1
from . import claims as kinds
from .trust import TrustList, parse_time
from .verify import Reason, Refused, Verifier, VerifyOptions, VerifyResult

ReadPicture = Callable[[bytes], list[str]]  # image file bytes -> the QR codes' texts

# (expected-result key, step name), in pipeline order; these make the verdict.
CHECKED = [("EXPECTEDPICTUREDECODE", "picture"), ("EXPECTEDUNPREFIX", "unprefix"),
           ("EXPECTEDB45DECODE", "base45"), ("EXPECTEDCOMPRESSION", "compression"),
           ("EXPECTEDDECODE", "decode"), ("EXPECTEDVERIFY", "verify"),
           ("EXPECTEDEXPIRATIONCHECK", "expiration")]
NOT_CHECKED = ["EXPECTEDSCHEMAVALIDATION", "EXPECTEDKEYUSAGE", "EXPECTEDVALIDJSON",
               "EXPECTEDVALIDOBJECT", "EXPECTEDENCODE", "EXPTECTEDEXPIRED", "EXPECTEDRESULTS"]
# What the full verdict must say when the first failing step is this one.
REASONS_FOR_STEP = {
    "unprefix": {Reason.NOT_A_CODE}, "base45": {Reason.BAD_ENCODING},
    "compression": {Reason.BAD_ENCODING}, "decode": {Reason.BAD_ENCODING},
    "verify": {Reason.UNKNOWN_KEY, Reason.BAD_SIGNATURE},
    "expiration": {Reason.EXPIRED, Reason.NOT_YET_VALID}, None: {None},
}


@dataclass
class Step:
    name: str
    expected: bool | None  # None: the case does not assert this step
    got: bool | None  # None: not run (no picture in the case)
    detail: str = ""

    @property
    def agrees(self) -> bool:
        # A step that could not be run (no picture in the case) is reported, not failed.
        return self.expected is None or self.got is None or self.got == self.expected


@dataclass
class CaseReport:
    name: str
    clock: dt.datetime | None
    steps: list[Step] = field(default_factory=list)
    verdict: VerifyResult | None = None
    verdict_ok: bool = True
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.verdict_ok and all(s.agrees for s in self.steps)

    def table(self) -> str:
        rows = [f"case {self.name} at {self.clock.isoformat() if self.clock else '?'}",
                f"  {'step':<12} {'expected':<9} {'got':<9} detail"]
        for s in self.steps:
            mark = "  " if s.agrees else "✗ "
            rows.append(f"{mark}{s.name:<12} {_b(s.expected):<9} {_b(s.got):<9} {s.detail}")
        if self.verdict is not None:
            mark = "  " if self.verdict_ok else "✗ "
            rows.append(f"{mark}verdict: valid={self.verdict.valid} "
                        f"reason={self.verdict.reason.value if self.verdict.reason else None} "
                        f"{self.verdict.detail}")
        if self.error:
            rows.append(f"✗ error: {self.error}")
        return "\n".join(rows)


def _b(value: bool | None) -> str:
    return "-" if value is None else str(value).lower()


def load_cases(root: str | Path) -> list[tuple[str, dict]]:
    root = Path(root)
    cases = []
    for path in sorted(root.rglob("*.json")):
        cases.append((str(path.relative_to(root)), json.loads(path.read_text(encoding="utf-8"))))
    return cases


def trust_for(case: dict) -> TrustList:
    cert = (case.get("TESTCTX") or {}).get("CERTIFICATE")
    entries = [{"certificate": cert, "purposes": ["dcc"], "label": "test anchor"}] if cert else []
    return TrustList.from_json({"keys": entries}, fetched_at=dt.datetime.now(dt.UTC))


def decode_picture(png_b64: str, read_picture: ReadPicture) -> str | None:
    texts = read_picture(base64.b64decode(png_b64))
    return texts[0] if texts else None


def run_case(name: str, case: dict, read_picture: ReadPicture | None = None,
             options: VerifyOptions | None = None) -> CaseReport:
    """`read_picture` (image bytes -> QR texts, e.g. devices.camera.picture.qr_texts) runs
    the picture step; without it the step is reported as not run."""
    expected = case.get("EXPECTEDRESULTS") or {}
    ctx = case.get("TESTCTX") or {}
    report = CaseReport(name, None)
    try:
        report.clock = parse_time(str(ctx.get("VALIDATIONCLOCK")))
    except ValueError:
        report.error = f"unreadable VALIDATIONCLOCK {ctx.get('VALIDATIONCLOCK')!r}"
        return report
    text = case.get("PREFIX", "")
    verifier = Verifier(trust_for(case), options=options)
    got: dict[str, tuple[bool | None, str]] = {}

    image = case.get("2DCODE") or case.get("_2DCODE")
    if read_picture and image:
        try:
            read = decode_picture(image, read_picture)
            got["picture"] = (read == text, "read the PREFIX" if read == text
                              else ("no QR code found" if read is None else "read other text"))
        except Exception as exc:  # noqa: BLE001 - a broken PNG is that step failing, not the run
            got["picture"] = (False, f"{type(exc).__name__}: {exc}")
    else:
        got["picture"] = (None, "no picture in the case" if read_picture else "not run")

    failed_at: str | None = None

    def fail(step: str, detail: str) -> None:
        nonlocal failed_at
        got[step] = (False, detail)
        failed_at = failed_at or step

    container = token = None
    try:
        body = hc1.unprefix(text)
        got["unprefix"] = (True, "")
        compressed = base45.decode(body)
        got["base45"] = (True, "")
        raw = hc1.inflate(compressed)
        got["compression"] = (True, "")
        message = cose.parse(raw)
        container = hc1.Container(message, hc1.parse_claims(message.payload))
        token = kinds.parse(container.claims)
        got["decode"] = (True, f"{token.kind}, alg {cose.ALG_NAMES.get(message.alg, message.alg)}")
    except hc1.ContainerError as exc:
        fail(exc.step, str(exc))
    except base45.Base45Error as exc:
        fail("base45", str(exc))
    except (cose.CoseError, kinds.ClaimsError) as exc:
        fail("decode", str(exc))

    if token is not None:
        try:
            key = verifier.authenticate(container.message, token.kind, report.clock)
            got["verify"] = (True, f"signed by {key.alg_name} key")
        except Refused as refusal:
            fail("verify", f"{refusal.reason.value}: {refusal.detail}")
        try:
            verifier.check(token, report.clock)
            got["expiration"] = (True, "")
        except Refused as refusal:
            fail("expiration", f"{refusal.reason.value}: {refusal.detail}")

    for key, step in CHECKED:
        value, detail = got.get(step, (False, f"not reached ({failed_at} failed)"))
        report.steps.append(Step(step, expected.get(key), value, detail))
    for key in NOT_CHECKED:
        if key in expected:
            report.steps.append(Step(key.removeprefix("EXPECTED").removeprefix("EXPTECTED").lower(),
                                     None, None, f"expected {_b(expected[key])}; not checked"))

    report.verdict = verifier.verify(text, at=report.clock)
    wanted = REASONS_FOR_STEP[failed_at]
    report.verdict_ok = report.verdict.reason in wanted and report.verdict.valid == (failed_at is None)
    return report


def summary(reports: list[CaseReport]) -> str:
    """A Markdown table: per step, cases asserting it and how many came out as expected."""
    lines = ["| step | asserted | as expected | expected to fail (and did) | not run |",
             "|---|---|---|---|---|"]
    for _key, step in CHECKED:
        asserted = [s for r in reports for s in r.steps if s.name == step and s.expected is not None]
        lines.append(f"| {step} | {len(asserted)} | {sum(s.agrees for s in asserted)} | "
                     f"{sum(1 for s in asserted if s.expected is False and s.agrees)} | "
                     f"{sum(1 for s in asserted if s.got is None)} |")
    ok = sum(r.ok for r in reports)
    lines.append("")
    lines.append(f"{ok} of {len(reports)} cases: every asserted step as expected and the "
                 f"verdict consistent with the steps.")
    return "\n".join(lines)
