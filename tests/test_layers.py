"""Imports go one way (docs/layers.md): devices <- kiosk <- sync's client; the township
server uses neither the gate's store nor its hardware; sync.testing is for tests only.

Every import statement counts, at the top of a module or inside a function, and so does
every module an import reaches in turn (importing a.b.c runs a/__init__ and a/b/__init__
too). Only the composition roots listed here, the modules that wire the layers together
for a user, may import across them.
"""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

from kiosk.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kiosk", "devices", "sync", "tui")

# The `gate` command and its subcommand modules, and the demo: they may import any layer.
COMPOSITION_ROOTS = {
    "kiosk.cli", "kiosk.demo", "kiosk.demo_console",  # the demo's console view: tui on the demo's gate
    "kiosk.decide_cmd", "kiosk.store_cmd", "kiosk.run_cmd", "kiosk.config_cmd", "kiosk.install_cmd", "kiosk.doctor_cmd",
    "kiosk.daemon",  # builds the running gate (devices, checkpoint, API, uploader) for gate run and the demo
    "kiosk.codes.codes_cmd", "kiosk.codes.keys_cmd",
    "devices.scan_cmd", "devices.sim_cmd", "devices.thermometer.thermometer_cmd",
    "sync.server_cmd", "sync.sync_cmd", "sync.enroll_cmd", "sync.township_cmd",
    "tui.console_cmd",
}

# (modules, what they must not reach, why)
RULES = [
    ("devices", ("kiosk", "sync", "tui"), "hardware knows nothing of the gate"),
    ("kiosk", ("sync", "tui"), "the gate works offline; the uploader and the console use it, not the reverse"),
    ("kiosk.codes", ("devices",), "what a code says does not depend on how it was read"),
    ("kiosk.rules", ("devices", "kiosk.store"), "the rules are a pure function"),
    ("sync.client", ("devices", "tui", "sync.server"), "the uploader needs no hardware and no server code"),
    ("sync.server", ("kiosk.store", "devices", "sync.client", "tui"),
     "the township server runs without the gate's store or hardware"),
    ("tui", ("devices", "sync", "kiosk.store", "kiosk.checkpoint", "kiosk.daemon", "kiosk.api", "kiosk.lookup"),
     "the console talks to the gate only through its local API"),
    ("", ("sync.testing",), "sync.testing is a test helper"),
]

# Imports that break a rule today and are being fixed elsewhere, each with where.
# The test fails when one is no longer needed, so the list only shrinks.
KNOWN: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def within(name: str, prefix: str) -> bool:
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


def with_parents(name: str) -> list[str]:
    """`a.b.c` runs a, a.b and a.b.c: each that is a module of ours."""
    parts = name.split(".")
    return [m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if m in MODULES]


@cache
def direct_imports(name: str) -> frozenset[str]:
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            stem = ".".join([*base, node.module] if node.module else base)
            # `from a import b` may name the module a.b or a name in a
            targets = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            found.update(with_parents(target))
    found.discard(name)
    return frozenset(found)


@cache
def reaches(name: str) -> dict[str, tuple[str, ...]]:
    """Every module of ours that importing `name` can run, with one chain that gets there."""
    chains: dict[str, tuple[str, ...]] = {}
    todo = [(name, (name,))]
    while todo:
        current, chain = todo.pop()
        for nxt in direct_imports(current):
            if (current, nxt) in KNOWN:
                continue
            if nxt not in chains and nxt != name and nxt not in COMPOSITION_ROOTS:
                chains[nxt] = (*chain, nxt)
                todo.append((nxt, chains[nxt]))
    return chains


def test_the_composition_roots_are_exactly_the_command_modules_and_the_demo():
    commands = {module for module, _ in COMMANDS.values()}
    cmd_files = {m for m in MODULES if m.endswith("_cmd")}
    assert commands <= COMPOSITION_ROOTS and cmd_files <= COMPOSITION_ROOTS
    # the demo's console view wires tui onto the demo's gate: a root, as the demo is
    assert COMPOSITION_ROOTS == commands | cmd_files | {"kiosk.cli", "kiosk.daemon", "kiosk.demo_console"}, \
        "a root that is no command"
    assert COMPOSITION_ROOTS <= set(MODULES)


@pytest.mark.parametrize("prefix,forbidden,why", RULES, ids=[r[0] or "anything" for r in RULES])
def test_imports_go_one_way(prefix, forbidden, why):
    broken = []
    for name in MODULES:
        if not within(name, prefix) or name in COMPOSITION_ROOTS or name == "sync.testing":
            continue
        for target, chain in reaches(name).items():
            if any(within(target, f) for f in forbidden):
                broken.append(" -> ".join(chain))
    assert not broken, f"{why}:\n  " + "\n  ".join(sorted(broken))


def test_known_exceptions_are_still_needed():
    for (name, target), where in KNOWN.items():
        assert target in direct_imports(name), f"{name} no longer imports {target}: drop it from KNOWN ({where})"


# Loggers still named after their module, in files other branches own this round.
LOGGERS_TO_RENAME: set[str] = set()


def test_every_logger_is_in_the_gate_tree():
    """One tree, so `--log-level` and a handler on "gate" reach every part's messages."""
    outside, renamed = [], []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "getLogger" and node.args):
                arg = node.args[0]
                ok = isinstance(arg, ast.Constant) and str(arg.value).split(".")[0] == "gate"
                if not ok and name not in LOGGERS_TO_RENAME:
                    outside.append(f"{name}:{node.lineno}")
                if ok and name in LOGGERS_TO_RENAME:
                    renamed.append(name)
    assert not outside, "loggers outside gate.*: " + ", ".join(outside)
    assert not renamed, f"renamed now: drop {renamed} from LOGGERS_TO_RENAME"
