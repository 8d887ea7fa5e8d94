"""Whatever the camera reads, the verifier answers with a reason and never raises.

Hypothesis throws random text, random bytes, random base45, random zlib'd bytes,
random CBOR and random COSE_Sign1 look-alikes at it, from outside in, so every layer
gets garbage that passed the layers before it. Nothing is ever valid.
"""
from __future__ import annotations

import datetime as dt
import os
import zlib

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.codes import Reason, TrustList, Verifier, base45, keys
from kiosk.codes.claims import GATE_CLAIM, HCERT_CLAIM
from kiosk.codes.trust import entry_for

KEY = keys.generate("Ed25519")
VERIFIER = Verifier(TrustList.from_json({"keys": [entry_for(KEY.public_key(), ["health", "pass"])]}))
AT = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)
# GATE_FUZZ_EXAMPLES=5000 for a longer hunt; the default keeps the suite quick.
FAST = settings(max_examples=int(os.environ.get("GATE_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def refused(result) -> None:
    assert result.valid is False
    assert isinstance(result.reason, Reason)
    assert not result.detail.startswith("internal error"), result.detail
    assert result.to_json()["reason"] == result.reason.value


def hc1(raw: bytes) -> str:
    return "HC1:" + base45.encode(zlib.compress(raw))


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.floats() | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.integers(-70001, 10) | st.text(max_size=4), inner, max_size=5)
    | st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 18, 24, 61, 1004, 55799]), inner),
    max_leaves=20)


@FAST
@given(st.text(max_size=500))
def test_random_text(text):
    refused(VERIFIER.verify(text, at=AT))


@FAST
@given(st.binary(max_size=500))
def test_random_bytes(data):
    refused(VERIFIER.verify(data, at=AT))


@FAST
@given(st.text(alphabet=base45.ALPHABET, max_size=400))
def test_random_base45_after_the_prefix(body):
    refused(VERIFIER.verify("HC1:" + body, at=AT))


@FAST
@given(st.binary(max_size=400))
def test_random_bytes_inside_a_valid_container(raw):
    refused(VERIFIER.verify(hc1(raw), at=AT))


@FAST
@given(cbor_values)
def test_random_cbor_inside_a_valid_container(value):
    try:
        raw = cbor2.dumps(value)
    except (ValueError, TypeError, OverflowError):
        return
    refused(VERIFIER.verify(hc1(raw), at=AT))


@FAST
@given(protected=st.one_of(st.binary(max_size=30), cbor_values.map(
           lambda v: cbor2.dumps({1: -8, 4: v}) if not isinstance(v, float) else b"")),
       unprotected=st.dictionaries(st.integers(-3, 5), cbor_values, max_size=3),
       claims=st.dictionaries(st.sampled_from([1, 4, 5, 6, GATE_CLAIM, HCERT_CLAIM]),
                              cbor_values, max_size=6),
       signature=st.binary(max_size=80))
def test_random_cose_sign1_look_alikes(protected, unprotected, claims, signature):
    try:
        raw = cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, cbor2.dumps(claims),
                                             signature]))
    except (ValueError, TypeError, OverflowError):
        return
    refused(VERIFIER.verify(hc1(raw), at=AT))


field_values = cbor_values | st.sampled_from(["health", "pass", "green", "red", "negative", 1,
                                              1764057600, 2**70, -2**70, float("nan"), "p1:x"])


@FAST
@given(times=st.dictionaries(st.sampled_from([1, 4, 5, 6]), field_values, max_size=4),
       fields=st.dictionaries(st.sampled_from(["k", "v", "p", "n", "c", "nt", "nr", "cm", "hh",
                                               "sn"]), field_values, max_size=10))
def test_signed_but_malformed_claims(times, fields):
    """Past the signature, the claims are the issuer's: a buggy issuer still gets a reason."""
    from kiosk.codes import issue
    try:
        text = issue.sign_claims({**times, GATE_CLAIM: fields}, KEY)
    except (ValueError, TypeError, OverflowError):
        return
    result = VERIFIER.verify(text, at=AT)
    assert not result.detail.startswith("internal error"), result.detail
    if result.valid:  # only a well-formed code of a known kind can be
        assert result.kind in ("health", "pass") and fields.get("v") == 1
