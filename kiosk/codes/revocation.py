"""Revoked passes, by serial (lost, moved away, issued by mistake).

JSON: `{"revoked": ["SERIAL", {"serial": "SERIAL", "reason": "lost"}, ...]}`, or a text
file with one serial a line (`#` starts a comment).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class RevocationListError(ValueError):
    """The revocation list cannot be read."""


@dataclass(frozen=True)
class RevocationList:
    serials: frozenset[str] = field(default_factory=frozenset)

    def __contains__(self, serial: object) -> bool:
        return serial in self.serials

    def __len__(self) -> int:
        return len(self.serials)

    @classmethod
    def from_json(cls, obj: Any) -> RevocationList:
        if not isinstance(obj, dict) or not isinstance(obj.get("revoked"), list):
            raise RevocationListError('a revocation list is a JSON object {"revoked": [...]}')
        serials = set()
        for item in obj["revoked"]:
            serial = item.get("serial") if isinstance(item, dict) else item
            if not isinstance(serial, str) or not serial.strip():
                raise RevocationListError(f"not a serial: {item!r}")
            serials.add(serial.strip())
        return cls(frozenset(serials))

    @classmethod
    def load(cls, path: str | Path) -> RevocationList:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RevocationListError(f"cannot read revocation list {path}: {exc}") from None
        if text.lstrip().startswith("{"):
            try:
                return cls.from_json(json.loads(text))
            except json.JSONDecodeError as exc:
                raise RevocationListError(f"revocation list {path} is not JSON: {exc}") from None
        lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
        return cls(frozenset(line for line in lines if line))
