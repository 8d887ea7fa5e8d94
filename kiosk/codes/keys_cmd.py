"""Signing keys for health codes and passes.

  gate keys new --out DIR [--purpose P ...] [--alg ES256|Ed25519] [--name NAME]

writes DIR/NAME.key (private key, PEM, mode 0600: keep it at the township office),
DIR/NAME.pub.pem (public key) and DIR/NAME.trust.json (a trust list holding this key's
entry, for gates; merge entries to trust several signers). The private key is never
printed; this is the only command that writes one.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import keys
from .claims import KINDS
from .trust import entry_for, kid_of_public_key


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    new = actions.add_parser("new", help="make a key pair and its trust-list entry",
                             description="Make a signing key pair and its trust-list entry.")
    new.add_argument("--out", required=True, type=Path, help="directory to write the files to")
    new.add_argument("--alg", choices=keys.ALGS, default="Ed25519",
                     help="signature algorithm (default: Ed25519, deterministic signatures: "
                          "no per-signature nonce to get wrong)")
    new.add_argument("--purpose", action="append", choices=KINDS,
                     help="what the key may sign; repeat for several (default: health and pass)")
    new.add_argument("--name", default="signer", help="file name stem (default: signer)")
    new.add_argument("--label", default="", help="a label for the trust-list entry")


def run(args: argparse.Namespace) -> int:
    purposes = args.purpose or ["health", "pass"]
    out: Path = args.out
    private_path = out / f"{args.name}.key"
    if private_path.exists():
        print(f"gate keys new: {private_path} exists; choose another --name or move it away",
              file=sys.stderr)
        return 2
    try:
        out.mkdir(parents=True, exist_ok=True)
        key = keys.generate(args.alg)
        keys.write_private_key(private_path, key)
        public_path = out / f"{args.name}.pub.pem"
        public_path.write_bytes(keys.public_pem(key))
        trust_path = out / f"{args.name}.trust.json"
        entry = entry_for(key.public_key(), purposes, label=args.label or args.name)
        trust_path.write_text(json.dumps({"keys": [entry]}, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"gate keys new: cannot write to {out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(json.dumps({"kid": entry["kid"], "kid_hex": kid_of_public_key(key.public_key()).hex(),
                      "alg": args.alg, "purposes": purposes, "private_key": str(private_path),
                      "public_key": str(public_path), "trust_list": str(trust_path)}, indent=2))
    return 0
