"""Health codes and passes: round trips, tampering, every refusal reason, the trust list."""
from __future__ import annotations

import base64
import datetime as dt
import zlib

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kiosk.codes import Reason, RevocationList, TrustList, Verifier, VerifyOptions, base45, cose, hc1, issue, keys
from kiosk.codes.claims import GATE_CLAIM, HCERT_CLAIM, HEALTH, PASS
from kiosk.codes.trust import entry_for, kid_of_public_key
from kiosk.people import person_ref

T0 = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)
ALICE = person_ref("110105194912310021", "township-salt")


@pytest.fixture(scope="module")
def signers():
    """One key per algorithm; RSA-2048 for PS256 (what EU issuers use)."""
    return {"Ed25519": keys.generate("Ed25519"), "ES256": keys.generate("ES256"),
            "PS256": rsa.generate_private_key(public_exponent=65537, key_size=2048)}


def trust_of(*entries, fetched_at=T0):
    return TrustList.from_json({"keys": list(entries)}, fetched_at=fetched_at)


def health(key, at=T0, **kw):
    fields = dict(person_ref=ALICE, name="张三丰", colour="green", issued_at=at)
    return issue.health_code(key, **{**fields, **kw})


def a_pass(key, **kw):
    fields = dict(community="C01", household="3-2-401", person_ref=ALICE, serial="S0001",
                  valid_from=T0, valid_until=T0 + dt.timedelta(days=30),
                  issued_at=T0 - dt.timedelta(days=1))
    return issue.resident_pass(key, **{**fields, **kw})


# --- base45 -----------------------------------------------------------------------

@pytest.mark.parametrize("raw,text", [(b"AB", "BB8"), (b"Hello!!", "%69 VD92EX0"),
                                      (b"base-45", "UJCLQE7W581"), (b"ietf!", "QED8WEX0"),
                                      (b"", "")])
def test_base45_rfc9285_examples(raw, text):
    assert base45.encode(raw) == text
    assert base45.decode(text) == raw


@pytest.mark.parametrize("bad", ["GGW", "A", "ABCD", "abc", "BB8=", ":::"])
def test_base45_refuses_what_is_not_base45(bad):
    with pytest.raises(base45.Base45Error):
        base45.decode(bad)


# --- round trips --------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["Ed25519", "ES256", "PS256"])
def test_health_code_round_trip(signers, alg):
    key = signers[alg]
    text = health(key, nat_at=T0 - dt.timedelta(hours=20), nat_result="negative", issuer="T01")
    assert text.startswith("HC1:")
    result = Verifier(trust_of(entry_for(key.public_key(), ["health"]))).verify(
        text, at=T0 + dt.timedelta(minutes=1))
    assert result.valid and result.reason is None and result.kind == HEALTH
    assert result.claims["person_ref"] == ALICE
    assert result.claims["name"] == "张*丰"
    assert result.claims["colour"] == "green"
    assert result.claims["nat_result"] == "negative"
    assert result.claims["nat_at"] == "2026-11-24T12:00:00Z"
    assert result.claims["issuer"] == "T01"
    assert result.token.colour == "green"


@pytest.mark.parametrize("alg", ["Ed25519", "ES256", "PS256"])
def test_pass_round_trip(signers, alg):
    key = signers[alg]
    result = Verifier(trust_of(entry_for(key.public_key(), ["pass"])),
                      options=VerifyOptions(community="C01")).verify(a_pass(key), at=T0 + dt.timedelta(days=3))
    assert result.valid and result.kind == PASS
    assert result.claims == {"community": "C01", "household": "3-2-401", "person_ref": ALICE,
                             "serial": "S0001", "valid_from": "2026-11-25T08:00:00Z",
                             "valid_until": "2026-12-25T08:00:00Z",
                             "issued_at": result.claims["issued_at"], "issuer": None}


@pytest.mark.parametrize("alg", ["Ed25519", "ES256", "PS256"])
def test_eu_style_certificate_round_trip(signers, alg):
    """The third kind: an EU hcert payload, signed here, verified as a DCC without colour."""
    key = signers[alg]
    dcc = {"ver": "1.3.0", "nam": {"fn": "Musterfrau", "gn": "Erika"}, "dob": "1964-08-12",
           "t": [{"tg": "840539006", "tr": "260415000", "sc": "2026-11-24T08:00:00Z"}]}
    text = issue.sign_claims({1: "AT", 6: int(T0.timestamp()),
                              4: int((T0 + dt.timedelta(days=2)).timestamp()),
                              HCERT_CLAIM: {1: dcc}}, key)
    verifier = Verifier(trust_of(entry_for(key.public_key(), ["dcc"])))
    result = verifier.verify(text, at=T0 + dt.timedelta(hours=1))
    assert result.valid and result.kind == "dcc" and result.token.certificate == dcc
    assert result.claims == {"type": "test", "name": "E**** M*********", "dob": "1964-08-12",
                             "issuer": "AT", "issued_at": "2026-11-25T08:00:00Z",
                             "expires_at": "2026-11-27T08:00:00Z"}
    assert verifier.verify(text, at=T0 + dt.timedelta(days=3)).reason == Reason.EXPIRED
    # A key trusted for our codes only may not vouch for a foreign certificate.
    assert Verifier(trust_of(entry_for(key.public_key(), ["health", "pass"]))).verify(
        text, at=T0).reason == Reason.WRONG_PURPOSE


def test_the_code_holds_no_full_name_and_no_id_number(signers):
    text = health(signers["Ed25519"])
    payload = cose.parse(hc1.inflate(base45.decode(text[4:]))).payload
    assert "张三丰".encode() not in payload and b"110105194912310021" not in payload
    assert "张*丰".encode() in payload


def test_kid_in_the_unprotected_header_also_verifies(signers):
    key = signers["ES256"]
    claims = cbor2.loads(cose.parse(hc1.inflate(base45.decode(health(key)[4:]))).payload)
    text = issue.sign_claims(claims, key, kid_protected=False)
    message = hc1.decode(text).message
    assert cose.HEADER_KID not in message.protected and message.kid == kid_of_public_key(key.public_key())
    assert Verifier(trust_of(entry_for(key.public_key()))).verify(text, at=T0).valid


def test_verifies_bytes_as_well_as_text(signers):
    key = signers["Ed25519"]
    text = health(key)
    assert Verifier(trust_of(entry_for(key.public_key()))).verify(text.encode(), at=T0).valid


# --- tampering ----------------------------------------------------------------------

def _recode(cose_bytes: bytes) -> str:
    return hc1.PREFIX + base45.encode(zlib.compress(cose_bytes, 9))


@pytest.mark.parametrize("alg", ["Ed25519", "ES256"])
def test_changing_any_byte_of_the_cose_message_makes_it_invalid(signers, alg):
    key = signers[alg]
    verifier = Verifier(trust_of(entry_for(key.public_key())))
    text = health(key)
    original = hc1.inflate(base45.decode(text[4:]))
    assert verifier.verify(_recode(original), at=T0).valid
    for i in range(len(original)):
        for mask in (0x01, 0x80, 0xFF):
            forged = bytearray(original)
            forged[i] ^= mask
            result = verifier.verify(_recode(bytes(forged)), at=T0)
            assert not result.valid, f"byte {i} ^ {mask:#x} still valid"
            assert result.reason in {Reason.BAD_ENCODING, Reason.BAD_SIGNATURE,
                                     Reason.UNKNOWN_KEY}, (i, mask, result)
            assert result.claims == {}  # nothing of a forged code is shown


def test_changing_any_byte_of_the_compressed_data_makes_it_invalid(signers):
    """Except a flip in bits zlib ignores (the header's level hint, deflate padding), which
    leaves the inflated code byte for byte what was signed: counted, checked to change nothing."""
    key = signers["Ed25519"]
    verifier = Verifier(trust_of(entry_for(key.public_key())))
    text = health(key)
    compressed = base45.decode(text[4:])
    original = hc1.inflate(compressed)
    padding_only = 0
    for i in range(len(compressed)):
        for mask in (0x01, 0x10, 0x80, 0xFF):
            forged = bytearray(compressed)
            forged[i] ^= mask
            result = verifier.verify(hc1.PREFIX + base45.encode(bytes(forged)), at=T0)
            if result.valid:
                assert hc1.inflate(bytes(forged)) == original, f"byte {i} ^ {mask:#x}"
                padding_only += 1
    assert padding_only <= 4  # at most a few bits of the last deflate byte


def test_changing_any_character_of_the_text_makes_it_invalid(signers):
    key = signers["ES256"]
    verifier = Verifier(trust_of(entry_for(key.public_key())))
    text = health(key)
    original = hc1.inflate(base45.decode(text[4:]))
    for i in range(len(text)):
        for replacement in {base45.ALPHABET[(base45.ALPHABET.find(text[i]) + 1) % 45], "a", "="}:
            forged = text[:i] + replacement + text[i + 1:]
            if forged == text:
                continue
            result = verifier.verify(forged, at=T0)
            if result.valid:  # only a deflate padding bit can have changed
                assert hc1.inflate(base45.decode(forged.strip()[4:])) == original, (i, replacement)
            elif i < 4:
                assert result.reason == Reason.NOT_A_CODE


def test_a_forger_using_a_trusted_kid_gets_bad_signature(signers):
    trusted, forger = signers["ES256"], keys.generate("ES256")
    claims = cbor2.loads(cose.parse(hc1.inflate(base45.decode(health(trusted)[4:]))).payload)
    forged = issue.sign_claims(claims, forger, kid=kid_of_public_key(trusted.public_key()))
    result = Verifier(trust_of(entry_for(trusted.public_key()))).verify(forged, at=T0)
    assert (result.valid, result.reason, result.claims) == (False, Reason.BAD_SIGNATURE, {})


def test_a_red_code_cannot_be_repainted_green(signers):
    key = signers["Ed25519"]
    message = hc1.decode(health(key, colour="red")).message
    claims = cbor2.loads(message.payload)
    claims[GATE_CLAIM]["c"] = "green"
    repainted = cose.Sign1(message.protected_raw, message.protected, message.unprotected,
                           cbor2.dumps(claims), message.signature)
    result = Verifier(trust_of(entry_for(key.public_key()))).verify(hc1.encode(repainted), at=T0)
    assert result.reason == Reason.BAD_SIGNATURE


# --- every refusal reason --------------------------------------------------------------

def test_health_code_freshness_window_and_clock_skew(signers):
    key = signers["Ed25519"]
    verifier = Verifier(trust_of(entry_for(key.public_key())),
                        options=VerifyOptions(max_age=dt.timedelta(minutes=5),
                                      clock_skew=dt.timedelta(seconds=60)))
    text = health(key, valid_for=None)
    at = lambda seconds: verifier.verify(text, at=T0 + dt.timedelta(seconds=seconds))  # noqa: E731
    assert at(0).valid
    assert at(-59).valid  # the phone's clock runs a little ahead of the gate's
    assert at(-61).reason == Reason.NOT_YET_VALID
    assert at(359).valid  # 5 min + 1 min skew
    old = at(361)
    assert old.reason == Reason.TOO_OLD and old.claims["colour"] == "green"  # a screenshot
    assert at(86400).reason == Reason.TOO_OLD


def test_health_code_expires_at_its_own_exp(signers):
    key = signers["Ed25519"]
    verifier = Verifier(trust_of(entry_for(key.public_key())),
                        options=VerifyOptions(max_age=dt.timedelta(minutes=30)))
    text = health(key, valid_for=dt.timedelta(minutes=2))
    assert verifier.verify(text, at=T0 + dt.timedelta(minutes=2)).valid
    assert verifier.verify(text, at=T0 + dt.timedelta(minutes=4)).reason == Reason.EXPIRED


def test_pass_time_window(signers):
    key = signers["Ed25519"]
    verifier = Verifier(trust_of(entry_for(key.public_key())))
    text = a_pass(key)
    assert verifier.verify(text, at=T0 - dt.timedelta(days=1)).reason == Reason.NOT_YET_VALID
    assert verifier.verify(text, at=T0 + dt.timedelta(days=29)).valid
    late = verifier.verify(text, at=T0 + dt.timedelta(days=31))
    assert late.reason == Reason.EXPIRED and late.claims["serial"] == "S0001"


def test_revoked_pass(signers):
    key = signers["Ed25519"]
    revoked = RevocationList.from_json({"revoked": ["S0009", {"serial": "S0001", "reason": "lost"}]})
    verifier = Verifier(trust_of(entry_for(key.public_key())), revoked=revoked)
    result = verifier.verify(a_pass(key), at=T0)
    assert result.reason == Reason.REVOKED and result.claims["household"] == "3-2-401"
    assert verifier.verify(a_pass(key, serial="S0002"), at=T0).valid


def test_revocation_list_from_a_text_file(tmp_path):
    path = tmp_path / "revoked.txt"
    path.write_text("# lost\nS0001\n\nS0002  # moved\n")
    assert RevocationList.load(path).serials == {"S0001", "S0002"}


def test_wrong_community(signers):
    key = signers["Ed25519"]
    trust = trust_of(entry_for(key.public_key()))
    assert Verifier(trust, options=VerifyOptions(community="C02")).verify(
        a_pass(key), at=T0).reason == Reason.WRONG_COMMUNITY
    assert Verifier(trust, options=VerifyOptions(community="C01")).verify(a_pass(key), at=T0).valid


def test_unknown_key(signers):
    stranger = keys.generate("Ed25519")
    result = Verifier(trust_of(entry_for(signers["Ed25519"].public_key()))).verify(
        health(stranger), at=T0)
    assert (result.valid, result.reason, result.claims) == (False, Reason.UNKNOWN_KEY, {})
    assert Verifier(TrustList()).verify(health(stranger), at=T0).reason == Reason.UNKNOWN_KEY


def test_wrong_purpose(signers):
    key = signers["Ed25519"]
    verifier = Verifier(trust_of(entry_for(key.public_key(), ["pass"])))
    result = verifier.verify(health(key), at=T0)
    assert result.reason == Reason.WRONG_PURPOSE and result.claims == {}
    assert verifier.verify(a_pass(key), at=T0).valid


def test_key_outside_its_validity_window_is_not_trusted(signers):
    key = signers["Ed25519"]
    entry = entry_for(key.public_key(), not_after=T0 - dt.timedelta(days=1))
    result = Verifier(trust_of(entry)).verify(health(key), at=T0)
    assert result.reason == Reason.UNKNOWN_KEY and "not_after" in result.detail


@pytest.mark.parametrize("text", [
    "", " ", "hello", "https://example.com/?a=1", "wxp://f2f0abcdefghijklmnop",
    "https://qr.alipay.com/fkx12345abcdefg",
    "00020101021126330014BR.GOV.BCB.PIX0111123456789015204000053039865802BR6304ABCD",
    "HC2:NCFOXN", "hc1:NCFOXN", "NCFOXN%TS3DH", "\x00\xff", "HC1", "二维码", "HC1:" + "0" * 9000,
])
def test_not_a_code(text):
    result = Verifier(TrustList()).verify(text, at=T0)
    assert (result.valid, result.kind, result.reason) == (False, "unknown", Reason.NOT_A_CODE)


@pytest.mark.parametrize("text", ["HC1:", "HC1:NCF", "HC1:ABC=", "HC1:" + base45.encode(b"hello"),
                                  "HC1:" + base45.encode(zlib.compress(b"\xff\xff")),
                                  "HC1:" + base45.encode(zlib.compress(cbor2.dumps([1, 2, 3]))),
                                  "HC1:" + base45.encode(zlib.compress(b"\x00" * 100_000))])
def test_bad_encoding(text):
    result = Verifier(TrustList()).verify(text, at=T0)
    assert (result.valid, result.reason) == (False, Reason.BAD_ENCODING)
    assert not result.detail.startswith("internal error")


def test_a_signed_payload_of_no_known_kind_is_bad_encoding(signers):
    key = signers["Ed25519"]
    text = issue.sign_claims({1: "T01", 6: 1764057600, -1: {"x": 1}}, key)
    result = Verifier(trust_of(entry_for(key.public_key()))).verify(text, at=T0)
    assert result.reason == Reason.BAD_ENCODING and "kind" in result.detail


def test_messages_in_chinese_by_default_and_english(signers):
    result = Verifier(TrustList()).verify("https://example.com", at=T0)
    assert result.to_json()["message"] == "不是健康码或出入证"
    assert result.to_json("en")["message"] == "Not a health code or pass"
    for reason in Reason:
        assert result.__class__(False, "unknown", reason).message("zh")
        assert result.__class__(False, "unknown", reason).message("en").isascii()


# --- the trust list ----------------------------------------------------------------------

def test_keys_sharing_a_kid_are_each_tried(signers):
    first, second = signers["ES256"], keys.generate("ES256")
    shared = base64.b64encode(b"SAMEKID!").decode()
    trust = trust_of({**entry_for(first.public_key()), "kid": shared},
                     {**entry_for(second.public_key()), "kid": shared})
    claims = cbor2.loads(hc1.decode(health(second)).message.payload)
    text = issue.sign_claims(claims, second, kid=b"SAMEKID!")
    assert len(trust.by_kid(b"SAMEKID!")) == 2
    assert Verifier(trust).verify(text, at=T0).valid


def test_stale_trust_list_is_flagged_and_still_used(signers):
    key = signers["Ed25519"]
    entry = entry_for(key.public_key())
    fresh = Verifier(trust_of(entry, fetched_at=T0 - dt.timedelta(hours=1))).verify(health(key), at=T0)
    stale = Verifier(trust_of(entry, fetched_at=T0 - dt.timedelta(days=8))).verify(health(key), at=T0)
    assert fresh.valid and not fresh.trust_stale
    assert stale.valid and stale.trust_stale
    assert trust_of(entry, fetched_at=None).is_stale(T0)  # unknown age counts as stale
    custom = Verifier(trust_of(entry, fetched_at=T0 - dt.timedelta(hours=3)),
                      options=VerifyOptions(trust_max_age=dt.timedelta(hours=2)))
    assert custom.verify(health(key), at=T0).trust_stale


def test_a_bad_entry_is_reported_and_the_rest_still_work(signers):
    key = signers["Ed25519"]
    trust = TrustList.from_json({"keys": [{"certificate": "bm90IGEgY2VydA==", "label": "broken"},
                                          {"public_key": "junk"}, {"purposes": ["health"]},
                                          {**entry_for(key.public_key()), "purposes": ["fly"]},
                                          "nonsense", entry_for(key.public_key())]},
                                fetched_at=T0)
    assert len(trust.keys) == 1 and len(trust.problems) == 5
    assert "entry 0 (broken)" in trust.problems[0]
    assert Verifier(trust).verify(health(key), at=T0).valid


def test_trust_list_kid_is_computed_when_absent(signers):
    key = signers["Ed25519"]
    entry = entry_for(key.public_key())
    del entry["kid"]
    assert trust_of(entry).keys[0].kid == kid_of_public_key(key.public_key())


def test_trust_list_from_file_knows_its_age(tmp_path, signers):
    import json
    import os
    path = tmp_path / "trust.json"
    path.write_text(json.dumps({"keys": [entry_for(signers["Ed25519"].public_key())]}))
    os.utime(path, (T0.timestamp() - 3600, T0.timestamp() - 3600))
    trust = TrustList.load(path)
    assert trust.age(T0) == dt.timedelta(hours=1) and not trust.is_stale(T0)
    path.write_text(json.dumps({"keys": [], "fetched_at": "2026-11-01T00:00:00Z"}))
    assert TrustList.load(path).is_stale(T0)


@pytest.mark.parametrize("content", ["", "[]", '{"keys": 3}', "{nope"])
def test_unreadable_trust_list_is_a_named_error(tmp_path, content):
    from kiosk.codes import TrustListError
    path = tmp_path / "trust.json"
    path.write_text(content)
    with pytest.raises(TrustListError):
        TrustList.load(path)
    with pytest.raises(TrustListError):
        TrustList.load(tmp_path / "missing.json")


def test_issuing_refuses_what_no_gate_would_accept(signers):
    with pytest.raises(ValueError):
        health(signers["Ed25519"], colour="purple")
    with pytest.raises(ValueError):
        a_pass(signers["Ed25519"], valid_until=T0 - dt.timedelta(days=1))
