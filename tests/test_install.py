"""The Raspberry Pi install: the units systemd will load, `gate install` into a DESTDIR,
the nightly backup, `gate doctor`, the release switch with its rollback and the first-boot
script. Nothing here touches the machine itself: every install goes under tmp_path.

READY=1 and WATCHDOG=1 under a real notify socket, and a hung checkpoint that stops the
pets, are tested in tests/test_gate_faults.py (test_a_hung_checkpoint_stops_petting_the_watchdog)
and tests/test_gate_run.py (test_ready_goes_to_the_notify_socket).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kiosk.store import Entry, Store

ROOT = Path(__file__).resolve().parents[1]
UNITS = sorted(p.name for p in (ROOT / "systemd").iterdir() if p.suffix in (".service", ".timer"))
GATE_UNITS = ("gate.service", "gate-console@.service", "gate-purge.service", "gate-purge.timer",
              "gate-backup.service", "gate-backup.timer")
ENABLED = {"multi-user.target.wants/gate.service": "/etc/systemd/system/gate.service",
           "multi-user.target.wants/gate-console@tty1.service": "/etc/systemd/system/gate-console@.service",
           "timers.target.wants/gate-purge.timer": "/etc/systemd/system/gate-purge.timer",
           "timers.target.wants/gate-backup.timer": "/etc/systemd/system/gate-backup.timer"}
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
NO_CONFIG = {"GATE_CONFIG": os.devnull, "GATE_LANG": "zh"}


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if not tool or not SYSTEM_UNITS.is_dir():
        pytest.fail("systemd-analyze is missing: apt-get install systemd (make test installs it)")
    return tool


def unit_root(tmp_path: Path, gate_bin: Path | None = None) -> Path:
    """A root systemd-analyze can verify against: the system's own units (targets, getty),
    ours, and the programs our ExecStart lines name (verify checks they are executable)."""
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "bin").mkdir()
    shutil.copy2("/bin/sh", root / "bin/sh")
    target = root / "opt/gate/current/bin/gate"
    target.parent.mkdir(parents=True)
    shutil.copy2(gate_bin or Path(sys.executable).with_name("gate"), target)
    (root / "etc/systemd/system").mkdir(parents=True)
    for name in UNITS:
        shutil.copy2(ROOT / "systemd" / name, root / "etc/systemd/system" / name)
    return root


def instance(name: str) -> str:
    return name.replace("@.", "@tty1.")


# -- the units ------------------------------------------------------------------------

def test_every_unit_passes_systemd_analyze_verify(tmp_path):
    tool = systemd_analyze()
    root = unit_root(tmp_path)
    for name in UNITS:
        out = subprocess.run([tool, "verify", f"--root={root}", instance(name)],
                             capture_output=True, text=True, timeout=60)
        # an unknown key or a bad value is only a warning (exit 0): both streams must be empty
        assert out.returncode == 0 and not out.stderr.strip() and not out.stdout.strip(), (name, out.stderr)


def test_verify_catches_a_broken_unit(tmp_path):
    """The check above can fail: a misspelt key and a missing program are reported."""
    tool = systemd_analyze()
    root = unit_root(tmp_path)
    unit = root / "etc/systemd/system/gate.service"
    unit.write_text(unit.read_text().replace("Restart=always", "Restart=always\nRestrat=always"))
    out = subprocess.run([tool, "verify", f"--root={root}", "gate.service"], capture_output=True, text=True)
    assert "Unknown key 'Restrat'" in out.stderr
    (root / "opt/gate/current/bin/gate").unlink()
    out = subprocess.run([tool, "verify", f"--root={root}", "gate.service"], capture_output=True, text=True)
    assert out.returncode != 0 and "not executable" in out.stderr


def test_every_service_is_exposed_less_than_5(tmp_path):
    """`systemd-analyze security`, offline: the numbers docs/install-pi.md quotes."""
    tool = systemd_analyze()
    root = unit_root(tmp_path)
    levels = {}
    for name in (n for n in UNITS if n.endswith(".service")):
        out = subprocess.run([tool, "security", "--offline=true", f"--root={root}", instance(name)],
                             capture_output=True, text=True, timeout=60)
        found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", out.stdout)
        assert found, out.stdout[-500:] + out.stderr
        levels[name] = float(found.group(1))
    print(levels)
    assert all(level < 5 for level in levels.values()), levels
    docs = (ROOT / "docs/install-pi.md").read_text()
    for name, level in levels.items():  # the documented numbers are the measured ones
        assert f"| `{name}` | {level} |" in docs, f"docs/install-pi.md: {name} measures {level}"


def syscalls(tool: str, name: str) -> set[str]:
    """A system call or a group (@name) as the system calls in it, nested groups expanded."""
    if not name.startswith("@"):
        return {name}
    out = subprocess.run([tool, "syscall-filter", name], capture_output=True, text=True, check=True).stdout
    found: set[str] = set()
    for line in out.splitlines()[1:]:
        word = line.strip()
        if word and not word.startswith("#"):
            found |= syscalls(tool, word)
    return found


def allowed_syscalls(tool: str, unit: str) -> set[str]:
    """SystemCallFilter= lines applied in order, as systemd.exec(5) says: the first (an allow
    list) sets the list, a later plain line adds to it, a later ~ line takes away."""
    allowed: set[str] = set()
    for line in (ROOT / "systemd" / unit).read_text().splitlines():
        if line.startswith("SystemCallFilter="):
            value = line.partition("=")[2]
            names = set().union(*(syscalls(tool, n) for n in value.lstrip("~").split()))
            allowed = allowed - names if value.startswith("~") else allowed | names
    return allowed


def test_the_gate_can_read_its_clock_flag_and_nothing_privileged():
    tool = systemd_analyze()
    allowed = allowed_syscalls(tool, "gate.service")
    assert "adjtimex" in allowed  # clock.clock_synchronised(): EPERM would read as never synchronised
    assert not allowed & {"settimeofday", "clock_settime", "setuid", "chown", "init_module", "reboot", "mount"}
    assert {"setpriority", "clone", "openat"} <= allowed  # the cascade worker's nice(2), threads, files


def test_the_gate_unit_is_watched_and_comes_back():
    text = (ROOT / "systemd/gate.service").read_text()
    for line in ("Type=notify", "WatchdogSec=30", "Restart=always", "StateDirectory=gate",
                 "ConfigurationDirectory=gate", "SupplementaryGroups=dialout video gpio", "ProtectSystem=strict",
                 "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n"):
        assert line in text, line
    for timer in ("gate-purge.timer", "gate-backup.timer"):  # no real-time clock: no calendar times
        t = (ROOT / "systemd" / timer).read_text()
        assert "OnBootSec=" in t and "OnUnitActiveSec=" in t and "OnCalendar" not in t


# -- gate install ---------------------------------------------------------------------

def tree(root: Path) -> dict[str, tuple]:
    """Every path under root with its type, mode, size, mtime and link target."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        out[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size,
                                            st.st_mtime_ns, os.readlink(path) if path.is_symlink() else None)
    return out


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_install_into_a_destdir_gives_the_tree_and_a_second_run_changes_nothing(gate, tmp_path):
    dest = tmp_path / "image"
    getty = dest / "etc/systemd/system/getty.target.wants/getty@tty1.service"
    getty.parent.mkdir(parents=True)
    getty.symlink_to("/lib/systemd/system/getty@.service")  # as on a fresh Raspberry Pi OS
    first = gate("install", "--destdir", str(dest), env=NO_CONFIG)
    assert first.returncode == 0, first.stderr
    assert "skipped:" in first.stdout and "useradd" in first.stdout  # no user under --destdir, said so
    assert mode(dest / "etc/gate") == 0o750 and mode(dest / "etc/gate/gate.toml") == 0o640
    assert (dest / "etc/gate/gate.toml").read_text() == (ROOT / "kiosk/gate.example.toml").read_text()
    assert mode(dest / "var/lib/gate") == 0o700 and mode(dest / "var/lib/gate/backups") == 0o700
    for name in GATE_UNITS:
        unit = dest / "etc/systemd/system" / name
        assert unit.read_bytes() == (ROOT / "systemd" / name).read_bytes() and mode(unit) == 0o644
    assert not (dest / "etc/systemd/system/gate-server.service").exists()  # the township's, not a gate's
    for link, target in ENABLED.items():
        assert os.readlink(dest / "etc/systemd/system" / link) == target
    assert not getty.is_symlink(), "the login prompt on tty1 would fight the console"
    if shutil.which("systemctl"):  # systemd's own reading of the links we wrote
        for unit in ("gate.service", "gate-console@tty1.service", "gate-purge.timer", "gate-backup.timer"):
            out = subprocess.run(["systemctl", f"--root={dest}", "is-enabled", unit], capture_output=True, text=True)
            assert out.stdout.strip() == "enabled", (unit, out.stdout, out.stderr)

    (dest / "etc/gate/gate.toml").write_text('[gate]\ndevice_id = "north-2"\n')  # the gate's own settings
    before = tree(dest)
    second = gate("install", "--destdir", str(dest), env=NO_CONFIG)
    assert second.returncode == 0, second.stderr
    assert "nothing to change" in second.stdout and not re.search(r"^changed:", second.stdout, re.M)
    assert tree(dest) == before


def test_uninstall_keeps_the_data_unless_asked(gate, tmp_path):
    dest = tmp_path / "image"
    (dest / "usr/lib/systemd/system").mkdir(parents=True)
    (dest / "lib").symlink_to("usr/lib")
    (dest / "usr/lib/systemd/system/getty@.service").write_text("[Service]\nExecStart=/sbin/agetty\n")
    assert gate("install", "--destdir", str(dest), env=NO_CONFIG).returncode == 0
    store = dest / "var/lib/gate/gate.db"
    store.write_bytes(b"the entries")
    out = gate("install", "--destdir", str(dest), "--uninstall", env=NO_CONFIG)
    assert out.returncode == 0, out.stderr
    assert not any((dest / "etc/systemd/system" / n).exists() for n in GATE_UNITS)
    assert not any((dest / "etc/systemd/system" / link).is_symlink() for link in ENABLED)
    assert os.readlink(dest / "etc/systemd/system/getty.target.wants/getty@tty1.service") == \
        "/lib/systemd/system/getty@.service"
    assert store.read_bytes() == b"the entries" and (dest / "etc/gate/gate.toml").exists()
    again = gate("install", "--destdir", str(dest), "--uninstall", env=NO_CONFIG)
    assert "nothing to change" in again.stdout
    purged = gate("install", "--destdir", str(dest), "--uninstall", "--purge-data", env=NO_CONFIG)
    assert purged.returncode == 0 and not (dest / "var/lib/gate").exists() and not (dest / "etc/gate").exists()


def test_install_refuses_what_it_cannot_do(gate, tmp_path):
    out = gate("install", "--destdir", str(tmp_path), "--purge-data", env=NO_CONFIG)
    assert out.returncode == 2 and "--purge-data goes with --uninstall" in out.stderr
    out = gate("install", "--destdir", str(tmp_path), "--console", "../../etc", env=NO_CONFIG)
    assert out.returncode == 2 and "--console must be a terminal" in out.stderr
    assert not (tmp_path / "etc").exists()


# -- backups --------------------------------------------------------------------------

def entry(i: int) -> Entry:
    return Entry(gate="东门", direction="in", subject_kind="resident", action="admit", report="none",
                 reasons=["all_checks_passed"], masked_name="张*三", person_ref=f"ref-{i:04d}",
                 readings=[{"object_c": 34.0, "ambient_c": 20.0, "body_c": 36.5}])


def test_a_backup_restores_to_a_store_with_every_entry(gate, tmp_path):
    db = tmp_path / "gate.db"
    folder = tmp_path / "backups"
    with Store.open(db) as store:
        for i in range(50):
            store.record(entry(i), device_id="east-1")
        writer = Store.open(db)  # the gate, mid-write: its uncommitted entry is not in the copy
        writer.conn.execute("BEGIN IMMEDIATE")
        writer.conn.execute("UPDATE device_seq SET last_seq = 999")
        out = gate("db", "backup", "--db", str(db), "--to", str(folder), "--keep", "2", env=NO_CONFIG)
        writer.conn.execute("ROLLBACK")
        writer.close()
        assert out.returncode == 0, out.stderr
        made = json.loads(out.stdout)
        assert made["entries"] == 50 and made["integrity"] == "ok"
        backup = Path(made["backup"])
        assert backup.parent == folder and mode(backup) == 0o600 and mode(folder) == 0o700
        assert not Path(f"{backup}-wal").exists()  # one self-contained file
        original = [e.to_row() for e in store.entries()]

    restored = tmp_path / "restored" / "gate.db"
    restored.parent.mkdir()
    shutil.copy2(backup, restored)
    with Store.open(restored, create=False) as store:
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [e.to_row() for e in store.entries()] == original
        assert store.last_seq("east-1") == 50
        store.record(entry(50), device_id="east-1")  # and the gate goes on from it
        assert store.last_seq("east-1") == 51

    for _ in range(3):  # rotation: the newest two stay
        assert gate("db", "backup", "--db", str(db), "--to", str(folder), "--keep", "2", env=NO_CONFIG).returncode == 0
    assert sorted(p.name.split("-")[1] for p in folder.iterdir()) == ["3", "4"]


def test_backup_names_what_is_wrong_and_makes_nothing(gate, tmp_path):
    out = gate("db", "backup", "--db", str(tmp_path / "none.db"), "--to", str(tmp_path / "b"),
               env={**NO_CONFIG, "GATE_LANG": "en"})
    assert out.returncode == 2 and "no store at" in out.stderr and not (tmp_path / "none.db").exists()
    Store.open(tmp_path / "g.db").close()
    out = gate("db", "backup", "--db", str(tmp_path / "g.db"), "--keep", "0", env={**NO_CONFIG, "GATE_LANG": "en"})
    assert out.returncode == 2 and "keep must be from 1 to 365" in out.stderr


# -- gate doctor ----------------------------------------------------------------------

ID_NUMBER = "11010519491231002X"
NAMES = ("张*三", "李*四", "王*")
ADDRESS = "3号楼2单元501"
PHONE = "13800138000"


def test_doctor_prints_no_personal_data(gate, tmp_path):
    db = tmp_path / "gate.db"
    with Store.open(db) as store:
        store.apply_township(lists={
            "households": ([{"id": "h1", "address": ADDRESS, "phone": PHONE, "note": ID_NUMBER}], "v1", None),
            "residents": ([{"person_ref": "ref-secret-0001", "household_id": "h1", "masked_name": NAMES[1],
                            "role": "owner", "phone": PHONE}], "v1", None),
            "guards": ([{"id": "g7", "masked_name": NAMES[2], "phone": PHONE}], "v1", None)})
        for i in range(12):
            store.record(entry(i), device_id="east-1")
        store.raise_alarm("fever", f"{NAMES[0]} 复测仍发热 {ID_NUMBER}")
    (tmp_path / "gate.toml").write_text(f'[gate]\ndevice_id = "east-1"\ncommunity = "c1"\n[store]\npath = "{db}"\n'
                                        f'[backup]\nfolder = "{tmp_path / "backups"}"\n'
                                        f'[api]\nsocket = "{tmp_path / "api.sock"}"\n')
    before = sorted(p.name for p in tmp_path.iterdir())
    outputs = []
    for args in ((), ("--lang", "en"), ("--json",)):
        out = gate("doctor", "--config", str(tmp_path / "gate.toml"), *args, env={"GATE_LANG": "zh"})
        assert out.returncode == 1, out.stderr  # problems: not running, no camera, not enrolled...
        outputs.append(out.stdout + out.stderr)
    for text in outputs:
        for secret in (ID_NUMBER, *NAMES, "ref-secret", "ref-0", ADDRESS, PHONE, "h1", "g7"):
            assert secret not in text, secret
    zh, en, as_json = outputs
    assert "门岗诊断" in zh and "完整性检查：ok" in zh and "待上传：12" in zh and "未确认告警：fever 1" in zh
    assert "integrity check: ok" in en and "backlog (not uploaded): 12" in en and "not enrolled" in en
    report = json.loads(as_json)
    assert report["sections"]["store"]["entries"] == 12 and "p_daemon" in report["problems"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no WAL, no shared memory, nothing new


def test_doctor_never_creates_a_store(gate, tmp_path):
    (tmp_path / "gate.toml").write_text(f'[store]\npath = "{tmp_path / "var" / "gate.db"}"\n')
    out = gate("doctor", "--config", str(tmp_path / "gate.toml"), "--lang", "en", env={})
    assert out.returncode == 1 and "no store yet" in out.stdout and "the demo's device id" in out.stdout
    assert not (tmp_path / "var").exists()
    bad = gate("doctor", "--config", str(tmp_path / "nope.toml"), "--lang", "en", env={})
    assert bad.returncode == 1 and "the configuration is wrong" in bad.stdout and "does not exist" in bad.stdout


# -- releases and the first boot ------------------------------------------------------

def fake_wheel(folder: Path, version: str, main: str) -> Path:
    """A wheel named gate whose `gate` command runs `main`: what the release switch installs."""
    files = {"gatefake.py": f"import sys\n\ndef main():\n    {main}\n",
             f"gate-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: gate\nVersion: {version}\n",
             f"gate-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                "Tag: py3-none-any\n",
             f"gate-{version}.dist-info/entry_points.txt": "[console_scripts]\ngate = gatefake:main\n"}
    path = folder / f"gate-{version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            data = text.encode()
            z.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        z.writestr(f"gate-{version}.dist-info/RECORD", "\n".join([*record, f"gate-{version}.dist-info/RECORD,,"]))
    return path


def release(*args: str, dest: Path) -> subprocess.CompletedProcess:
    # the check that stands in for `systemctl restart gate` + staying up: the release's own command
    env = {**os.environ, "DESTDIR": str(dest), "GATE_PIP_ARGS": "--no-deps --no-index", "GATE_LOCK": os.devnull,
           "GATE_START_CHECK": f'"{dest}/opt/gate/current/bin/gate" --version'}
    return subprocess.run([str(ROOT / "scripts/gate-release"), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_an_update_that_does_not_start_rolls_back(tmp_path):
    wheels, dest = tmp_path / "wheels", tmp_path / "pi"
    wheels.mkdir()
    good = fake_wheel(wheels, "1.0.0", 'print("gate 1.0.0")')
    broken = fake_wheel(wheels, "1.1.0", 'sys.exit("cannot start")')
    out = release("update", str(good), dest=dest)
    assert out.returncode == 0, out.stderr
    assert os.readlink(dest / "opt/gate/current") == "releases/1.0.0"
    out = release("update", str(broken), dest=dest)
    assert out.returncode == 1 and "rolling back to 1.0.0" in out.stderr
    assert os.readlink(dest / "opt/gate/current") == "releases/1.0.0"
    assert subprocess.run([dest / "opt/gate/current/bin/gate"], capture_output=True, text=True).stdout == "gate 1.0.0\n"
    again = release("update", str(good), dest=dest)  # the same wheel again: nothing to do
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_firstboot_turns_a_fresh_image_into_a_gate(gate, tmp_path):
    """The image script's install step into a DESTDIR (no apt, no systemctl): the real wheel."""
    bundle, dest = tmp_path / "bundle", tmp_path / "pi"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(bundle),
                            str(ROOT)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    for name in ("scripts/gate-release", "scripts/pi-firstboot.sh", "requirements.lock"):
        shutil.copy2(ROOT / name, bundle)
    (dest / "boot/firmware").mkdir(parents=True)
    (dest / "boot/firmware/config.txt").write_text("arm_64bit=1\n")
    (dest / "boot/firmware/cmdline.txt").write_text("console=serial0,115200 console=tty1 root=PARTUUID=1 rootwait\n")
    env = {**os.environ, "DESTDIR": str(dest), "GATE_PIP_ARGS": "--no-deps"}
    cmd = [str(bundle / "pi-firstboot.sh"), "--ntp-server", "ntp.township.example", str(bundle)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    config = (dest / "boot/firmware/config.txt").read_text().splitlines()
    assert "enable_uart=1" in config and "dtoverlay=disable-bt" in config
    assert (dest / "boot/firmware/cmdline.txt").read_text() == "console=tty1 root=PARTUUID=1 rootwait\n"
    assert "RuntimeWatchdogSec=15" in (dest / "etc/systemd/system.conf.d/gate-watchdog.conf").read_text()
    assert "server ntp.township.example iburst" in (dest / "etc/chrony/conf.d/gate.conf").read_text()
    assert os.readlink(dest / "opt/gate/current") == "releases/0.1.0"
    for name in GATE_UNITS:  # from the wheel's share/gate/systemd, as on the Pi
        assert (dest / "etc/systemd/system" / name).read_bytes() == (ROOT / "systemd" / name).read_bytes()
    assert mode(dest / "var/lib/gate") == 0o700 and (dest / "etc/gate/gate.toml").exists()
    before = tree(dest)
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0 and "nothing to change" in again.stdout, again.stdout + again.stderr
    assert {k: v for k, v in tree(dest).items() if "__pycache__" not in k} == \
        {k: v for k, v in before.items() if "__pycache__" not in k}
    # the units the image holds pass verify against the gate the image holds
    tool = systemd_analyze()
    root = unit_root(tmp_path / "verify", gate_bin=dest / "opt/gate/current/bin/gate")
    for name in GATE_UNITS:
        check = subprocess.run([tool, "verify", f"--root={root}", instance(name)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stderr.strip(), (name, check.stderr)
    doctor = subprocess.run([dest / "opt/gate/current/bin/gate", "doctor", "--help"], capture_output=True, text=True)
    assert doctor.returncode == 0



def test_firstboot_names_what_is_missing_and_writes_nothing(tmp_path):
    dest = tmp_path / "pi"
    env = {**os.environ, "DESTDIR": str(dest)}
    script = str(ROOT / "scripts/pi-firstboot.sh")
    out = subprocess.run([script, "--ntp-server", "ntp.example; reboot", str(tmp_path)], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 2 and "--ntp-server must be a host name" in out.stderr
    out = subprocess.run([script, str(tmp_path)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2 and "expected one gate-*.whl" in out.stderr
    assert not dest.exists()
