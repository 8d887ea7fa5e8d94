"""`gate install`: make this machine a gate (as root, on a Raspberry Pi OS with systemd).

  sudo gate install                     user, /etc/gate, /var/lib/gate, units enabled
  gate install --destdir /tmp/image     the same tree under a folder (packaging, tests)
  sudo gate install --uninstall [--purge-data]

The gate itself is a venv in /opt/gate (`make install-pi`, docs/install-pi.md); this sets
the machine up around it: the system user `gate` (and the dialout, video and gpio groups
when missing), /etc/gate/gate.toml from the annotated example (an existing one is never
touched), /var/lib/gate and its backups folder (0700, the gate's), the systemd units in
/etc/systemd/system, enabled: the gate, the console on tty1 (instead of the login prompt
there), the daily purge and backup. Run it again and it changes nothing and says so.
Under --destdir there is no user to make (said so) and no systemctl: the enabling
symlinks are written as systemctl would. --uninstall disables and removes the units and
keeps /etc/gate and /var/lib/gate (the store, the enrollment), unless --purge-data.
"""
from __future__ import annotations

import argparse
import configparser
import grp
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

USER = "gate"
GROUPS = ("dialout", "video", "gpio")  # the serial port, the camera, the relay's GPIO chip
CONF_DIR, STATE_DIR, UNIT_DIR = "/etc/gate", "/var/lib/gate", "/etc/systemd/system"
BACKUP_DIR = f"{STATE_DIR}/backups"
GATE_BIN = "/opt/gate/current/bin/gate"
UNITS = ("gate.service", "gate-console@.service", "gate-purge.service", "gate-purge.timer",
         "gate-backup.service", "gate-backup.timer")
GETTY_TEMPLATE = "/lib/systemd/system/getty@.service"


class InstallError(Exception):
    """The install cannot go on; the message says what to do."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--destdir", default="", metavar="DIR",
                        help="install under DIR instead of / (no user, no systemctl)")
    parser.add_argument("--console", default="tty1", metavar="TTY",
                        help="the terminal for the guard's console (default: tty1, the Pi's screen; none: no console)")
    parser.add_argument("--uninstall", action="store_true",
                        help="disable and remove the units; keep /etc/gate and /var/lib/gate")
    parser.add_argument("--purge-data", action="store_true",
                        help="with --uninstall: also delete /var/lib/gate (the store, backups, enrollment) "
                             "and /etc/gate")


def run(args: argparse.Namespace) -> int:
    if args.purge_data and not args.uninstall:
        raise InstallError("--purge-data goes with --uninstall")
    if args.console != "none" and not (args.console.startswith("tty") and args.console[3:].isalnum()
                                       and len(args.console) <= 12):
        raise InstallError(f"--console must be a terminal like tty1 (or none), not {args.console!r}")
    if not args.destdir and os.geteuid() != 0:
        raise InstallError("run it as root (sudo gate install), or pass --destdir DIR")
    inst = Installer(args.destdir, None if args.console == "none" else args.console)
    if args.uninstall:
        inst.uninstall(purge=args.purge_data)
    else:
        inst.install()
    if inst.changes:
        print(f"gate install: {len(inst.changes)} change(s)")
    else:
        print("gate install: nothing to change" + ("" if args.uninstall else ": already installed"))
    return 0


def unit_sources() -> Path:
    """The unit files: the checkout's systemd/ when run from one (an editable install's copy in
    share/ would be stale after an edit), else those installed with the wheel."""
    for folder in (Path(__file__).resolve().parents[1] / "systemd", Path(sys.prefix) / "share" / "gate" / "systemd"):
        if (folder / "gate.service").is_file():
            return folder
    raise InstallError(f"cannot find the unit files (looked in {sys.prefix}/share/gate/systemd and the checkout)")


def wanted_by(unit_file: Path) -> list[str]:
    """[Install] WantedBy= of a unit file: where `systemctl enable` puts its symlink."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(unit_file.read_text(encoding="utf-8"))
    return parser.get("Install", "WantedBy", fallback="").split()


class Installer:
    def __init__(self, destdir: str, console: str | None) -> None:
        self.root = Path(destdir or "/")
        self.live = not destdir  # the real machine: a user to make, systemctl to ask
        self.systemd = self.live and shutil.which("systemctl") is not None and Path("/run/systemd/system").is_dir()
        self.console = console
        self.changes: list[str] = []
        self.sources = unit_sources()

    def at(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def say(self, changed: bool, text: str) -> None:
        print(("changed:   " if changed else "unchanged: ") + text)
        if changed:
            self.changes.append(text)

    @property
    def enabled(self) -> list[str]:
        units = ["gate.service", "gate-purge.timer", "gate-backup.timer"]
        return units + ([f"gate-console@{self.console}.service"] if self.console else [])

    # -- install ----------------------------------------------------------------------
    def install(self) -> None:
        self.user()
        self.folder(CONF_DIR, 0o750, owner="root")
        self.config()
        self.folder(STATE_DIR, 0o700, owner=USER)
        self.folder(BACKUP_DIR, 0o700, owner=USER)
        units_changed = [self.unit(name) for name in UNITS]
        if self.systemd and any(units_changed):
            self.systemctl("daemon-reload")
        for unit in self.enabled:
            self.enable(unit)
        if self.console:
            self.disable_getty(self.console)
        if not self.at(GATE_BIN).exists():
            print(f"note: {GATE_BIN} is missing: install the gate's wheel into /opt/gate first "
                  "(make install-pi; docs/install-pi.md)")

    def user(self) -> None:
        if not self.live:
            print(f"skipped:   the system user {USER!r} and the groups {', '.join(GROUPS)} (not under "
                  f"--destdir; on the machine: useradd --system --user-group --home-dir {STATE_DIR} "
                  f"--shell /usr/sbin/nologin {USER})")
            return
        for group in GROUPS:
            if not _exists(grp.getgrnam, group):
                _check(["groupadd", "--system", group])
                self.say(True, f"group {group}")
        if _exists(pwd.getpwnam, USER):
            self.say(False, f"user {USER}")
            return
        _check(["useradd", "--system", "--user-group", "--home-dir", STATE_DIR, "--no-create-home",
                "--shell", "/usr/sbin/nologin", "--comment", "community gate", USER])
        self.say(True, f"user {USER}")

    def _ids(self, owner: str) -> tuple[int, int] | None:
        """(uid, gid) to own a file; None under --destdir (files stay the installer's)."""
        if not self.live:
            return None
        gid = grp.getgrnam(USER).gr_gid
        return (0 if owner == "root" else pwd.getpwnam(owner).pw_uid), gid

    def folder(self, path: str, mode: int, owner: str) -> None:
        target = self.at(path)
        made = not target.is_dir()
        target.mkdir(parents=True, exist_ok=True)
        self._own(target, mode, owner, made, f"{path}/ ({mode:04o})")

    def _own(self, target: Path, mode: int, owner: str, made: bool, text: str) -> None:
        st = target.stat()
        ids = self._ids(owner)
        fix = made or (st.st_mode & 0o7777) != mode or (ids is not None and (st.st_uid, st.st_gid) != ids)
        if fix:
            os.chmod(target, mode)
            if ids is not None:
                os.chown(target, *ids)
        self.say(fix, text)

    def config(self) -> None:
        target = self.at(f"{CONF_DIR}/gate.toml")
        if target.exists():  # the gate's own settings: never replaced
            self.say(False, f"{CONF_DIR}/gate.toml (kept as it is; `gate config example` prints the example)")
            return
        example = Path(__file__).with_name("gate.example.toml").read_bytes()
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "wb") as f:
            f.write(example)
        self._own(target, 0o640, "root", True, f"{CONF_DIR}/gate.toml from the annotated example (edit it)")

    def unit(self, name: str) -> bool:
        source = (self.sources / name).read_bytes()
        target = self.at(f"{UNIT_DIR}/{name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_file() and target.read_bytes() == source:
            self.say(False, f"{UNIT_DIR}/{name}")
            return False
        tmp = target.with_name(f".{name}.tmp")
        tmp.write_bytes(source)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        self.say(True, f"{UNIT_DIR}/{name}")
        return True

    def enable(self, unit: str) -> None:
        if self.systemd:
            if self.systemctl("is-enabled", "--quiet", unit, check=False) == 0:
                self.say(False, f"enabled {unit}")
            else:
                self.systemctl("enable", unit)
                self.say(True, f"enabled {unit}")
            return
        prefix, at, rest = unit.partition("@")  # an instance (gate-console@tty1) enables its template
        template = f"{prefix}@{rest[rest.rindex('.'):]}" if at else unit
        for target in wanted_by(self.at(f"{UNIT_DIR}/{template}")):
            self.link(f"{UNIT_DIR}/{target}.wants/{unit}", f"{UNIT_DIR}/{template}", f"enabled {unit} ({target})")

    def link(self, path: str, points_to: str, text: str) -> None:
        link = self.at(path)
        if link.is_symlink() and os.readlink(link) == points_to:
            self.say(False, text)
            return
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(points_to)  # absolute, as systemctl writes it: valid once the tree is /
        self.say(True, text)

    def disable_getty(self, tty: str) -> None:
        """The login prompt on the console's terminal would fight it for the screen (Conflicts=
        stops it when the console starts; disabled, it is not even started at boot)."""
        unit = f"getty@{tty}.service"
        if self.systemd:
            if self.systemctl("is-enabled", "--quiet", unit, check=False) == 0:
                self.systemctl("disable", unit)
                self.say(True, f"disabled {unit} (the console is on {tty})")
            return
        link = self.at(f"{UNIT_DIR}/getty.target.wants/{unit}")
        if link.is_symlink():
            link.unlink()
            self.say(True, f"disabled {unit} (the console is on {tty})")

    # -- uninstall --------------------------------------------------------------------
    def uninstall(self, purge: bool) -> None:
        for unit in self.enabled:
            if self.systemd:
                if self.systemctl("is-enabled", "--quiet", unit, check=False) == 0:
                    self.systemctl("disable", "--now", unit)
                    self.say(True, f"disabled {unit}")
                continue
            # not glob("*.wants/unit"): it skips a link that dangles here, as they do under --destdir
            for link in (d / unit for d in sorted(self.at(UNIT_DIR).glob("*.wants"))):
                if not link.is_symlink():
                    continue
                link.unlink()
                self.say(True, f"disabled {unit} ({link.parent.name})")
        if self.console:
            self.restore_getty(self.console)
        for name in UNITS:
            target = self.at(f"{UNIT_DIR}/{name}")
            if target.is_file():
                target.unlink()
                self.say(True, f"removed {UNIT_DIR}/{name}")
        if self.systemd:
            self.systemctl("daemon-reload")
        if purge:
            for path in (STATE_DIR, CONF_DIR):
                if self.at(path).exists():
                    shutil.rmtree(self.at(path))
                    self.say(True, f"deleted {path}/")
        else:
            print(f"kept:      {STATE_DIR}/ (the store, backups, enrollment) and {CONF_DIR}/ "
                  "(--purge-data deletes them)")
        if self.live and _exists(pwd.getpwnam, USER):
            print(f"kept:      the user {USER} (userdel {USER} removes it)")

    def restore_getty(self, tty: str) -> None:
        unit = f"getty@{tty}.service"
        if self.systemd:
            if self.systemctl("is-enabled", "--quiet", unit, check=False) != 0:
                self.systemctl("enable", unit)
                self.say(True, f"enabled {unit} again")
        elif self.at(GETTY_TEMPLATE).exists():
            self.link(f"{UNIT_DIR}/getty.target.wants/{unit}", GETTY_TEMPLATE, f"enabled {unit} again")

    def systemctl(self, *words: str, check: bool = True) -> int:
        return _check(["systemctl", *words], check=check)


def _exists(lookup, name: str) -> bool:
    try:
        lookup(name)
        return True
    except KeyError:
        return False


def _check(cmd: list[str], check: bool = True) -> int:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{' '.join(cmd)}: {exc}") from None
    if check and done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise InstallError(f"{' '.join(cmd)} failed: {why[-1] if why else f'exit {done.returncode}'}")
    return done.returncode
