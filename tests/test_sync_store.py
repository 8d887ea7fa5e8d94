"""The Store methods the sync client needs: renumbering after an unsalvageable
rebuild, applying a pulled bundle in one transaction, acking single seqs."""
from __future__ import annotations

import random

import pytest

from kiosk.store import Store, StoreError
from sync.testing import fill

DEV = "c.east"


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "gate.db")
    yield s
    s.close()


def test_renumber_above_keeps_order_and_continues_numbering(tmp_path):
    path = tmp_path / "gate.db"
    path.write_bytes(b"SQLite format 3\x00" + b"this is not a database" * 100)  # corrupt: nothing to salvage
    store = Store.open(path)
    assert store.meta("seq_floor_unknown") == "1"
    before = fill(store, DEV, 4, random.Random(1))
    assert [e.seq for e in before] == [1, 2, 3, 4]
    assert store.renumber_above(DEV, 100) == 4
    after = store.entries()
    assert [e.seq for e in after] == [101, 102, 103, 104]
    assert [e.monotonic_ns for e in after] == [e.monotonic_ns for e in before]
    assert store.meta("seq_floor_unknown") is None
    assert fill(store, DEV, 1)[0].seq == 105
    store.close()


def test_renumber_refuses_when_something_was_synced(store):
    fill(store, DEV, 3)
    store.mark_synced(DEV, 1)
    with pytest.raises(StoreError, match="already synced"):
        store.renumber_above(DEV, 10)
    assert [e.seq for e in store.entries()] == [1, 2, 3]


def test_renumber_with_floor_zero_only_clears_the_flag(store):
    fill(store, DEV, 2)
    store.conn.execute("INSERT INTO meta VALUES ('seq_floor_unknown', '1')")
    assert store.renumber_above(DEV, 0) == 0
    assert [e.seq for e in store.entries()] == [1, 2] and store.meta("seq_floor_unknown") is None


def test_mark_synced_seqs_marks_exactly_those(store):
    fill(store, DEV, 5)
    assert store.mark_synced_seqs(DEV, [2, 4]) == 2
    assert [e.seq for e in store.unsynced(DEV)] == [1, 3, 5]
    assert store.unsynced_count(DEV) == 3


def test_apply_township_is_all_or_nothing(store):
    store.apply_township(policy={"risk_level": "low"}, policy_version=("1", '"p1"'),
                         lists={"vehicles": ([{"plate": "京A1", "household_id": None}], "1", '"v1"')},
                         meta={"township_manifest_etag": '"m1"'})
    assert store.policy() == {"risk_level": "low"}
    with pytest.raises(StoreError):
        store.apply_township(policy={"risk_level": "high"},
                             lists={"vehicles": ([{"plate": "京B2"}], "2", '"v2"'),
                                    "risk_areas": ([{"code": "1", "name": "x", "bogus": 1}], "1", '"r1"')},
                             meta={"township_manifest_etag": '"m2"'})
    assert store.policy() == {"risk_level": "low"}
    assert [r["plate"] for r in store.db["vehicles"].rows] == ["京A1"]
    assert store.list_version("vehicles")["etag"] == '"v1"'
    assert store.meta("township_manifest_etag") == '"m1"'


def test_apply_township_checks_references_across_lists(store):
    resident = {"person_ref": "p1:ab", "household_id": "h1", "masked_name": "张*", "role": "owner"}
    with pytest.raises(StoreError, match="refers to a missing households row"):
        store.apply_township(lists={"residents": ([resident], "1", '"r1"')})
    assert store.db["residents"].count == 0
    assert not store.conn.in_transaction
    store.apply_township(lists={"residents": ([resident], "1", '"r1"'),
                                "households": ([{"id": "h1", "address": "3-2-501"}], "1", '"h1"')})
    assert store.db["residents"].count == 1
    # Replacing households while residents still point at them works inside one bundle.
    store.apply_township(lists={"households": ([{"id": "h1", "address": "3-2-502"}], "2", '"h2"')})
    assert store.db["households"].get("h1")["address"] == "3-2-502"


def test_mark_unsynced_above_resends_only_what_the_server_lost(store):
    fill(store, DEV, 6)
    store.mark_synced(DEV, 5)
    assert store.mark_unsynced_above(DEV, 3) == 2
    assert [e.seq for e in store.unsynced(DEV)] == [4, 5, 6]


def test_nonce_cache_accepts_each_nonce_once():
    from sync.auth import AuthError, NonceCache
    cache = NonceCache(window_s=10, bucket_s=5, max_size=3)
    assert cache.add("d", "n1", 0, now=0) and not cache.add("d", "n1", 0, now=1)
    assert cache.add("other", "n1", 1, now=1)  # nonces are per device
    assert cache.add("d", "n2", 2, now=2)
    with pytest.raises(AuthError, match="retry later"):  # full: refuse rather than forget
        cache.add("d", "n4", 3, now=3)
    assert cache.add("d", "n3", 20, now=20)  # buckets older than the window are dropped whole
    assert len(cache) == 1
    assert cache.add("d", "n1", 21, now=21)
