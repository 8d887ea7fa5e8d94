"""`gate keys new`, `gate codes issue`, `gate codes verify`, as a township officer and a
gate would run them: real files, real PNGs, the command in a subprocess."""
from __future__ import annotations

import datetime as dt
import json
import stat

import pytest

from kiosk.people import person_ref


@pytest.fixture(scope="module")
def township(tmp_path_factory):
    """A signing key made by the command itself."""
    from conftest import run_gate
    out_dir = tmp_path_factory.mktemp("township")
    done = run_gate("keys", "new", "--out", str(out_dir), "--alg", "ES256", "--label", "T01")
    assert done.returncode == 0, done.stderr
    return out_dir, json.loads(done.stdout), done


def verify(gate, township, *args):
    out_dir, _, _ = township
    done = gate("codes", "verify", "--trust", str(out_dir / "signer.trust.json"), *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_keys_new_writes_a_private_key_only_its_owner_can_read(township):
    out_dir, summary, done = township
    key_file = out_dir / "signer.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    body = "".join(key_file.read_text().splitlines()[1:-1])
    for stream in (done.stdout, done.stderr):  # never printed
        assert "PRIVATE" not in stream and body[:40] not in stream
    trust = json.loads((out_dir / "signer.trust.json").read_text())
    assert trust["keys"][0]["kid"] == summary["kid"]
    assert trust["keys"][0]["purposes"] == ["health", "pass"]
    assert (out_dir / "signer.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_keys_new_never_overwrites_a_key(gate, township):
    out_dir, _, _ = township
    before = (out_dir / "signer.key").read_bytes()
    again = gate("keys", "new", "--out", str(out_dir))
    assert again.returncode == 2 and "exists" in again.stderr
    assert (out_dir / "signer.key").read_bytes() == before


def test_issue_and_verify_a_health_code(gate, township):
    out_dir, _, _ = township
    done = gate("codes", "issue", "health", "--key", str(out_dir / "signer.key"),
                "--id-number", "110105194912310021", "--salt", "township-salt", "--name", "张三丰",
                "--colour", "yellow", "--nat-time", "2026-11-24T08:00:00+08:00",
                "--nat-result", "negative", "--issuer", "T01")
    assert done.returncode == 0, done.stderr
    text = done.stdout.strip()
    assert text.startswith("HC1:") and "PRIVATE" not in done.stdout + done.stderr
    result = verify(gate, township, text)
    assert result["valid"] is True and result["kind"] == "health" and result["reason"] is None
    assert result["claims"]["person_ref"] == person_ref("110105194912310021", "township-salt")
    assert result["claims"]["name"] == "张*丰" and result["claims"]["colour"] == "yellow"
    assert result["claims"]["nat_at"] == "2026-11-24T00:00:00Z"
    assert result["message"] == "验证通过"
    # Ten minutes later the same text is a screenshot.
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat()
    old = verify(gate, township, "--at", later, "--lang", "en", text)
    assert (old["valid"], old["reason"]) == (False, "too_old")
    assert "screenshot" in old["message"]


def test_issue_a_pass_as_png_and_verify_the_picture(gate, township, tmp_path):
    out_dir, _, _ = township
    png = tmp_path / "pass.png"
    # Dates around today: a pass is valid from the later of its start and its issue.
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0)
    start, end = now - dt.timedelta(days=30), now + dt.timedelta(days=60)
    done = gate("codes", "issue", "pass", "--key", str(out_dir / "signer.key"),
                "--person-ref", "p1:0123456789abcdef0123456789abcdef", "--community", "C01",
                "--household", "3-2-401", "--serial", "S0042",
                "--valid-from", start.isoformat(), "--valid-until", end.isoformat(), "--png", str(png))
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    at = (now + dt.timedelta(hours=1)).isoformat()
    from_picture = verify(gate, township, "--at", at, "--community", "C01", str(png))
    assert from_picture["valid"] and from_picture["claims"]["serial"] == "S0042"
    assert verify(gate, township, "--at", at, "--community", "C02", str(png))["reason"] == \
        "wrong_community"
    revoked = tmp_path / "revoked.json"
    revoked.write_text(json.dumps({"revoked": ["S0042"]}))
    assert verify(gate, township, "--at", at, "--revoked", str(revoked), str(png))["reason"] == \
        "revoked"
    assert verify(gate, township, "--at", (end + dt.timedelta(days=1)).isoformat(), str(png))["reason"] == \
        "expired"
    assert verify(gate, township, "--at", (start - dt.timedelta(days=1)).isoformat(), str(png))["reason"] == \
        "not_yet_valid"
    (tmp_path / "code.txt").write_text(done.stdout)
    assert verify(gate, township, "--at", at, f"@{tmp_path / 'code.txt'}")["valid"]


def test_an_image_without_a_code_and_plain_junk_are_not_codes(gate, township, tmp_path):
    import cv2
    import numpy as np
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200), 255, np.uint8))
    for spec in (str(blank), "https://pay.example.com/qr?id=42"):
        result = verify(gate, township, spec)
        assert (result["valid"], result["kind"], result["reason"]) == (False, "unknown", "not_a_code")


def test_code_from_an_unknown_signer(gate, township, tmp_path):
    other = tmp_path / "other"
    assert gate("keys", "new", "--out", str(other)).returncode == 0
    text = gate("codes", "issue", "health", "--key", str(other / "signer.key"), "--person-ref",
                "p1:ab", "--name", "李四", "--colour", "green").stdout.strip()
    result = verify(gate, township, text)
    assert (result["valid"], result["reason"], result["claims"]) == (False, "unknown_key", {})


@pytest.mark.parametrize("args,complaint", [
    (["codes", "verify", "--trust", "/nonexistent/trust.json", "HC1:X"], "cannot read trust list"),
    (["codes", "verify", "--at", "yesterday", "HC1:X"], "not an ISO time"),
    (["codes", "verify", "@/nonexistent/code.txt"], "cannot read"),
    (["codes", "verify", "/nonexistent/code.png"], "cannot read"),
    (["codes", "issue", "health", "--key", "/nonexistent.key", "--person-ref", "p1:x",
      "--name", "王五", "--colour", "green"], "cannot read key"),
    (["codes", "issue", "health", "--key", "/dev/null", "--name", "王五", "--colour", "green"],
     "not an unencrypted PEM private key"),
    (["codes", "issue", "health", "--key", "k", "--name", "王五", "--colour", "purple"], "invalid choice"),
    (["codes"], "required"),
])
def test_usage_errors_exit_2_with_a_clear_message(gate, args, complaint):
    done = gate(*args)
    assert done.returncode == 2
    assert complaint in done.stderr


def test_issue_needs_a_person(gate, township):
    out_dir, _, _ = township
    base = ["codes", "issue", "health", "--key", str(out_dir / "signer.key"), "--name", "王五",
            "--colour", "green"]
    assert "--person-ref" in gate(*base).stderr
    no_salt = gate(*base, "--id-number", "110105194912310021", env={"GATE_PERSON_SALT": ""})
    assert no_salt.returncode == 2 and "--salt" in no_salt.stderr
