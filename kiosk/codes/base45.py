"""Base45 (RFC 9285): the QR alphanumeric alphabet, so a QR code can hold binary data densely."""
from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}


class Base45Error(ValueError):
    """The text is not valid base45."""


def encode(data: bytes) -> str:
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out += (ALPHABET[c], ALPHABET[d], ALPHABET[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += (ALPHABET[c], ALPHABET[d])
    return "".join(out)


def decode(text: str) -> bytes:
    if len(text) % 3 == 1:
        raise Base45Error(f"base45 text of length {len(text)} cannot be whole")
    try:
        values = [_VALUE[ch] for ch in text]
    except KeyError as exc:
        raise Base45Error(f"{exc.args[0]!r} is not a base45 character") from None
    out = bytearray()
    for i in range(0, len(values), 3):
        chunk = values[i:i + 3]
        if len(chunk) == 3:
            n = chunk[0] + chunk[1] * 45 + chunk[2] * 45 * 45
            if n > 0xFFFF:
                raise Base45Error("base45 triplet out of range")
            out += n.to_bytes(2, "big")
        else:
            n = chunk[0] + chunk[1] * 45
            if n > 0xFF:
                raise Base45Error("base45 pair out of range")
            out.append(n)
    return bytes(out)
