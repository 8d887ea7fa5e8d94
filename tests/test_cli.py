"""Every `gate` subcommand answers --help and is documented in docs/cli.md."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kiosk.cli import COMMANDS, build_parser

DOCS = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()


def nested(parser: argparse.ArgumentParser, prefix: list[str]):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + [name], sub
                yield from nested(sub, prefix + [name])


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_help_and_docs(gate, name):
    out = gate(name, "--help", timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"gate {name}" in out.stdout
    assert f"`gate {name}" in DOCS, f"gate {name} is not in docs/cli.md"
    parser, _ = build_parser(name)
    for words, sub in nested(parser, [name]):
        assert f"gate {' '.join(words)}" in DOCS, f"gate {' '.join(words)} is not in docs/cli.md"
        with pytest.raises(SystemExit) as exit_:
            sub.parse_args(["--help"])
        assert exit_.value.code == 0


def test_gate_alone_lists_the_commands(gate):
    out = gate("--help")
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout


def test_unknown_command_is_a_clear_error(gate):
    out = gate("fly")
    assert out.returncode == 2 and "unknown command" in out.stderr


def test_each_documented_list_format_uploads(gate, tmp_path):
    """docs/sync.md shows a row for every list `gate township list` takes; each one is accepted."""
    import json
    import os
    import re

    from kiosk.store import LISTS
    from sync.server.app import Settings
    from sync.server.thread import ServerThread

    sync_doc = (Path(__file__).resolve().parents[1] / "docs" / "sync.md").read_text()
    examples = dict(re.findall(r"^\| `(\w+)` \| .* \| `(\{.*\})` \|$", sync_doc, re.M))
    assert set(examples) == set(LISTS)
    with ServerThread(Settings(db_url=str(tmp_path / "township.db"), admin_token="t")) as server:
        for name, row in examples.items():
            (tmp_path / f"{name}.json").write_text(json.dumps({"rows": [json.loads(row.replace("…", "0"))]}))
            out = gate("township", "list", "--server", server.url, "--community", "c", "--name", name,
                       str(tmp_path / f"{name}.json"), env={"GATE_ADMIN_TOKEN": "t", "GATE_CONFIG": os.devnull})
            assert out.returncode == 0 and "1 rows, version 1" in out.stdout, (name, out.stderr)
