"""Health codes and resident passes: issue, verify, run EU test vectors.

  gate codes issue health --key K (--person-ref R | --id-number N --salt S) --name NAME
                          --colour green|yellow|red [--nat-time T --nat-result R] [--png F]
  gate codes issue pass   --key K --community C --household H (--person-ref R | ...)
                          --valid-until T [--valid-from T] --serial S [--png F]
  gate codes verify [--trust FILE] [--revoked FILE] [--at ISO-TIME] [--community ID]
                    TEXT | @FILE | IMAGE.png | -
  gate codes vectors DIR          (EU dgc-testdata cases, step by step)

`verify` prints one JSON object: {"valid", "kind", "reason", "claims", "message", ...}
and exits 0 whatever the verdict; 2 on usage errors (missing files, bad times).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from ..people import person_ref
from .claims import COLOURS, NAT_RESULTS

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
SALT_ENV = "GATE_PERSON_SALT"
TRUST_ENV = "GATE_TRUST_LIST"


class UsageError(Exception):
    """Exit 2 with this message."""


def iso_time(text: str) -> dt.datetime:
    from .trust import parse_time
    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)

    issue = actions.add_parser("issue",
                               help="sign a health code or a pass (township side, tests, demo)",
                               description="Sign a code; prints the HC1 text.")
    kinds = issue.add_subparsers(dest="kind", required=True)
    health = kinds.add_parser("health", help="a township health code",
                              description="Sign a health code (valid a few minutes).")
    pass_ = kinds.add_parser("pass", help="a resident pass (出入证)",
                             description="Sign a resident pass.")
    for sub in (health, pass_):
        sub.add_argument("--key", required=True, type=Path, help="private key PEM (gate keys new)")
        who = sub.add_argument_group("person (one of)")
        who.add_argument("--person-ref", help="the person reference (p1:...)")
        who.add_argument("--id-number", help="ID number, hashed with --salt; never stored")
        who.add_argument("--salt", help=f"township salt for person_ref (or ${SALT_ENV})")
        sub.add_argument("--issuer", help="issuer (CWT iss), e.g. the township code")
        sub.add_argument("--issued-at", type=iso_time, help="ISO time (default: now)")
        sub.add_argument("--png", type=Path, help="also write the QR code to this PNG file")
    health.add_argument("--name", required=True, help="the person's name (stored masked: 张*三)")
    health.add_argument("--colour", "--color", required=True, choices=COLOURS)
    health.add_argument("--nat-time", type=iso_time, help="last nucleic-acid test, ISO time")
    health.add_argument("--nat-result", choices=NAT_RESULTS, help="last nucleic-acid test result")
    health.add_argument("--valid-minutes", type=float, default=5.0,
                        help="expiry after issue (default 5; 0 for none)")
    pass_.add_argument("--community", required=True, help="community id")
    pass_.add_argument("--household", required=True, help="household id")
    pass_.add_argument("--serial", required=True, help="pass serial (for revocation)")
    pass_.add_argument("--valid-from", type=iso_time, help="ISO time (default: now)")
    pass_.add_argument("--valid-until", type=iso_time, required=True, help="ISO time")

    verify = actions.add_parser("verify", help="verify a code offline; prints JSON",
                                description="Verify a code against the trust list; prints JSON. "
                                            "Exit 0 whatever the verdict, 2 on usage errors.")
    verify.add_argument("input", help="the code text, @FILE with the text, an image file, or -")
    verify.add_argument("--trust", type=Path,
                        help=f"trust list JSON (default: ${TRUST_ENV}; none: every key unknown)")
    verify.add_argument("--revoked", type=Path, help="revoked pass serials (JSON or one a line)")
    verify.add_argument("--at", type=iso_time, help="verify as at this ISO time (default: now)")
    verify.add_argument("--community", help="this gate's community: passes for others are refused")
    verify.add_argument("--max-age", type=float, default=300,
                        help="seconds a health code stays fresh (default 300)")
    verify.add_argument("--skew", type=float, default=60, help="allowed clock skew, s (default 60)")
    verify.add_argument("--trust-max-age", type=float, default=168,
                        help="hours before the trust list is flagged stale (default 168)")
    verify.add_argument("--dcc-colour", choices=COLOURS,
                        help="colour a valid EU certificate counts as (only if policy says so)")
    verify.add_argument("--lang", choices=("zh", "en"), default=None,
                        help="message language (default zh, or $GATE_LANG)")

    vectors = actions.add_parser("vectors", help="run EU DCC test cases step by step",
                                 description="Run dgc-testdata cases (one JSON per case) and "
                                             "report each step; exit 1 if any disagrees.")
    vectors.add_argument("dir", type=Path, help="folder of case files (searched recursively)")
    vectors.add_argument("--no-picture", action="store_true", help="skip decoding the QR images")
    vectors.add_argument("--verbose", action="store_true", help="print every case, not only failures")


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "issue":
            return run_issue(args)
        if args.action == "verify":
            return run_verify(args)
        return run_vectors(args)
    except UsageError as exc:
        print(f"gate codes {args.action}: {exc}", file=sys.stderr)
        return 2


def _person(args: argparse.Namespace) -> str:
    if args.person_ref:
        if args.id_number:
            raise UsageError("give --person-ref or --id-number, not both")
        return args.person_ref
    if not args.id_number:
        raise UsageError("give --person-ref, or --id-number with --salt")
    salt = args.salt or os.environ.get(SALT_ENV)
    if not salt:
        raise UsageError(f"--id-number needs --salt (or ${SALT_ENV})")
    return person_ref(args.id_number, salt)


def run_issue(args: argparse.Namespace) -> int:
    from . import issue, keys
    from .claims import ClaimsError
    try:
        key = keys.load_private_key(args.key)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    ref = _person(args)
    try:
        if args.kind == "health":
            valid_for = dt.timedelta(minutes=args.valid_minutes) if args.valid_minutes > 0 else None
            text = issue.health_code(key, person_ref=ref, name=args.name, colour=args.colour,
                                     issued_at=args.issued_at, valid_for=valid_for,
                                     nat_at=args.nat_time, nat_result=args.nat_result,
                                     issuer=args.issuer)
        else:
            text = issue.resident_pass(key, community=args.community, household=args.household,
                                       person_ref=ref, serial=args.serial,
                                       valid_from=args.valid_from or dt.datetime.now(dt.UTC),
                                       valid_until=args.valid_until, issued_at=args.issued_at,
                                       issuer=args.issuer)
    except (ValueError, ClaimsError) as exc:
        raise UsageError(str(exc)) from None
    if args.png:
        import segno
        try:
            segno.make_qr(text, error="m").save(str(args.png), scale=6, border=4)
        except OSError as exc:
            raise UsageError(f"cannot write {args.png}: {exc.strerror}") from None
        print(f"wrote {args.png}", file=sys.stderr)
    print(text)
    return 0


def read_input(spec: str) -> str:
    """The text to verify: literal, @FILE, -, or the first QR code in an image file."""
    if spec == "-":
        return sys.stdin.read()
    if spec.startswith("@"):
        try:
            return Path(spec[1:]).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UsageError(f"cannot read {spec[1:]}: {exc.strerror}") from None
    path = Path(spec)
    if path.suffix.lower() in IMAGE_SUFFIXES and not spec.startswith("HC1:"):
        from devices.camera.picture import PictureError, qr_texts
        try:
            texts = qr_texts(path.read_bytes())
        except OSError as exc:
            raise UsageError(f"cannot read {spec}: {exc.strerror}") from None
        except PictureError as exc:
            raise UsageError(f"{spec}: {exc}") from None
        # A phone screen may show several codes: prefer one that looks like ours.
        return next((t for t in texts if t.strip().startswith("HC1:")), texts[0] if texts else "")
    return spec


def run_verify(args: argparse.Namespace) -> int:
    from .revocation import RevocationList, RevocationListError
    from .trust import TrustList, TrustListError
    from .verify import Verifier, VerifyOptions

    trust_path = args.trust or (Path(os.environ[TRUST_ENV]) if os.environ.get(TRUST_ENV) else None)
    try:
        trust = TrustList.load(trust_path) if trust_path else TrustList()
        revoked = RevocationList.load(args.revoked) if args.revoked else RevocationList()
    except (TrustListError, RevocationListError) as exc:
        raise UsageError(str(exc)) from None
    if trust_path is None:
        print("gate codes verify: no trust list (--trust or $GATE_TRUST_LIST): "
              "every code is from an unknown key", file=sys.stderr)
    for problem in trust.problems:
        print(f"gate codes verify: trust list {problem} (skipped)", file=sys.stderr)
    text = read_input(args.input)
    options = VerifyOptions(max_age=dt.timedelta(seconds=args.max_age),
                            clock_skew=dt.timedelta(seconds=args.skew), community=args.community,
                            trust_max_age=dt.timedelta(hours=args.trust_max_age),
                            dcc_colour=args.dcc_colour)
    result = Verifier(trust, revoked, options).verify(text, at=args.at)
    print(json.dumps(result.to_json(args.lang), ensure_ascii=False))
    return 0


def run_vectors(args: argparse.Namespace) -> int:
    from .conformance import load_cases, run_case, summary
    if not args.dir.is_dir():
        raise UsageError(f"{args.dir} is not a folder")
    try:
        cases = load_cases(args.dir)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the cases: {exc}") from None
    read_picture = None
    if not args.no_picture:
        from devices.camera.picture import qr_texts as read_picture
    reports = [run_case(name, case, read_picture) for name, case in cases]
    for report in reports:
        if args.verbose or not report.ok:
            print(report.table() + "\n")
    print(summary(reports))
    return 0 if all(r.ok for r in reports) else 1
