"""Backups of the store on the card: SQLite's online backup API, checked, rotated.

The gate keeps writing while a backup runs (WAL: the backup reads one snapshot). Each
copy is a single self-contained file (journal_mode DELETE, no WAL beside it), 0600 like
the store, and passes `PRAGMA integrity_check` before it takes its final name; a copy
that fails is deleted and the error named. Copies are numbered, not dated, and the
highest `keep` numbers stay: a Pi without a real-time clock may boot in the past, and a
rotation by date would then delete the newest copy.
"""
from __future__ import annotations

import dataclasses
import os
import re
import sqlite3
import time
from contextlib import suppress
from pathlib import Path

from kiosk import clock
from kiosk.store import PRIVATE, Store, StoreError, _fsync_dir, _say

MAX_KEEP = 365
NAME = re.compile(r"^gate-(\d{1,9})-[0-9TZ]+\.db$")


class BackupError(StoreError):
    """The backup could not be made or did not check out; the message says why."""


@dataclasses.dataclass
class Backup:
    path: Path
    bytes: int
    entries: int
    seconds: float
    removed: list[str]


def copies(folder: Path) -> list[tuple[int, Path]]:
    """The backups in `folder`, oldest (lowest number) first."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), folder / n) for n in names if (m := NAME.match(n))]
    return sorted(found)


def make(store_path: str | os.PathLike, folder: str | os.PathLike, keep: int) -> Backup:
    """Copy the store at `store_path` into `folder` (made 0700), check it, keep the newest `keep`."""
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= MAX_KEEP:
        raise BackupError(_say(f"保留份数须在 1 到 {MAX_KEEP} 之间，而不是 {keep!r}",
                               f"keep must be from 1 to {MAX_KEEP}, not {keep!r}"))
    started = time.monotonic()
    folder = Path(folder)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    except OSError as exc:
        raise BackupError(_say(f"无法使用备份目录 {folder}：{exc.strerror}",
                               f"cannot use the backup folder {folder}: {exc.strerror}")) from None
    existing = copies(folder)
    number = existing[-1][0] + 1 if existing else 1
    stamp = clock.utc_now().strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"gate-{number}-{stamp}.db"
    tmp = folder / f".{target.name}.tmp"
    with Store.open(store_path, create=False) as store:  # never makes a store; names a bad one
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE))
            dst = sqlite3.connect(tmp, isolation_level=None)
            try:
                store.conn.backup(dst)  # one step: one consistent snapshot, writers go on (WAL)
                dst.execute("PRAGMA journal_mode = DELETE")  # one file, no WAL beside it
                problem = "; ".join(str(r[0]) for r in dst.execute("PRAGMA integrity_check"))
                entries = dst.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            finally:
                dst.close()
        except (OSError, sqlite3.Error) as exc:
            _remove(tmp)
            raise BackupError(_say(f"备份失败（{tmp}）：{exc}", f"backup failed ({tmp}): {exc}")) from None
    if problem != "ok":
        _remove(tmp)
        raise BackupError(_say(f"备份未通过完整性检查（{problem[:200]}），已删除",
                               f"the copy failed its integrity check ({problem[:200]}); deleted"))
    try:
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        _remove(tmp)
        raise BackupError(_say(f"无法保存备份 {target}：{exc.strerror}",
                               f"cannot keep the backup {target}: {exc.strerror}")) from None
    _fsync_dir(folder)
    removed = []
    for _, old in copies(folder)[:-keep]:
        _remove(old)
        removed.append(old.name)
    return Backup(path=target, bytes=target.stat().st_size, entries=int(entries),
                  seconds=round(time.monotonic() - started, 3), removed=removed)


def _remove(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()
    with suppress(FileNotFoundError):
        Path(f"{path}-journal").unlink()
