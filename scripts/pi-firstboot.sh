#!/usr/bin/env bash
# Turn a fresh Raspberry Pi OS Lite (64-bit, bookworm) into a gate. Run once, as root, on the
# Pi (or in the image's chroot, e.g. as a pi-gen stage), from a folder holding:
#   gate-<version>-py3-none-any.whl   (make wheel)
#   requirements.lock, gate-release, pi-firstboot.sh   (from the repository)
#
#   sudo ./pi-firstboot.sh [--ntp-server HOST] [FOLDER]
#
# It installs the Debian packages the gate uses, turns the UART on for the thermometer
# (enable_uart=1, the serial login console off, Bluetooth off so the full UART is on GPIO
# 14/15), arms the hardware watchdog (RuntimeWatchdogSec), points chrony at the township's
# time server when given, keeps the journal small and on the card, installs the wheel as
# /opt/gate/releases/<version> (current -> it) and runs `gate install`. Then edit
# /etc/gate/gate.toml, enroll and reboot (docs/install-pi.md). Running it again changes
# nothing that is already right.
#
# For tests and image builds: DESTDIR=DIR does every file step under DIR; GATE_FIRSTBOOT_OFFLINE=1
# (implied by DESTDIR) skips apt-get and systemctl. GATE_PIP_ARGS passes on to pip.
set -euo pipefail

NTP_SERVER=""
if [ "${1:-}" = "--ntp-server" ]; then NTP_SERVER="${2:?--ntp-server needs a host}"; shift 2; fi
[[ -z "$NTP_SERVER" || "$NTP_SERVER" =~ ^[A-Za-z0-9.:-]{1,253}$ ]] || {
  echo "pi-firstboot: --ntp-server must be a host name or address, not '$NTP_SERVER'" >&2; exit 2; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FOLDER="${1:-$HERE}"
ROOT="${DESTDIR:-}"
OFFLINE="${GATE_FIRSTBOOT_OFFLINE:-}"
[ -n "$ROOT" ] && OFFLINE=1
APT_PACKAGES=(python3-venv python3-picamera2 python3-lgpio libzbar0 chrony espeak-ng fbterm fonts-wqy-zenhei sqlite3)

say() { echo "pi-firstboot: $*"; }
die() { echo "pi-firstboot: $*" >&2; exit 2; }

[ -n "$ROOT" ] || [ "$(id -u)" -eq 0 ] || die "run it as root (sudo)"
shopt -s nullglob
wheels=("$FOLDER"/gate-*-py3-none-any.whl)
[ ${#wheels[@]} -eq 1 ] || die "expected one gate-*.whl in $FOLDER, found ${#wheels[@]} (make wheel)"
release_script="$FOLDER/gate-release"
[ -x "$release_script" ] || release_script="$HERE/gate-release"
[ -x "$release_script" ] || die "gate-release is missing beside this script"

# 1. Debian packages
if [ -z "$OFFLINE" ]; then
  say "apt-get install ${APT_PACKAGES[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
else
  say "skipped apt-get (offline): ${APT_PACKAGES[*]}"
fi

# A line in a file, added once.
ensure_line() {
  local file="$1" line="$2"
  mkdir -p "$(dirname "$file")"
  [ -e "$file" ] || : > "$file"
  grep -qxF "$line" "$file" || { echo "$line" >> "$file"; say "$file: + $line"; }
}

# 2. The UART for the thermometer: on, no login console on it, the full UART (Bluetooth off).
boot="$ROOT/boot/firmware"
[ ! -f "$boot/config.txt" ] && [ -f "$ROOT/boot/config.txt" ] && boot="$ROOT/boot"  # before bookworm
ensure_line "$boot/config.txt" "enable_uart=1"
ensure_line "$boot/config.txt" "dtoverlay=disable-bt"
if [ -f "$boot/cmdline.txt" ] && grep -qE 'console=(serial0|ttyAMA0|ttyS0),[0-9]+ ?' "$boot/cmdline.txt"; then
  sed -i -E 's/console=(serial0|ttyAMA0|ttyS0),[0-9]+ ?//' "$boot/cmdline.txt"
  say "$boot/cmdline.txt: the serial console is off"
fi
if [ -z "$OFFLINE" ]; then
  systemctl disable --now hciuart.service 2>/dev/null || true   # Bluetooth's modem on the UART
fi

# 3. The hardware watchdog: systemd pets the SoC's watchdog; a hung kernel reboots.
ensure_line "$ROOT/etc/systemd/system.conf.d/gate-watchdog.conf" "[Manager]"
ensure_line "$ROOT/etc/systemd/system.conf.d/gate-watchdog.conf" "RuntimeWatchdogSec=15"
ensure_line "$ROOT/etc/systemd/system.conf.d/gate-watchdog.conf" "RebootWatchdogSec=2min"

# 4. Time: no real-time clock; chrony steps the clock at any offset (the Pi boots in the past).
if [ -n "$NTP_SERVER" ]; then
  ensure_line "$ROOT/etc/chrony/conf.d/gate.conf" "server $NTP_SERVER iburst"
  ensure_line "$ROOT/etc/chrony/conf.d/gate.conf" "makestep 1 -1"
fi

# 5. The journal: on the card (survives a power cut), capped.
ensure_line "$ROOT/etc/systemd/journald.conf.d/gate.conf" "[Journal]"
ensure_line "$ROOT/etc/systemd/journald.conf.d/gate.conf" "Storage=persistent"
ensure_line "$ROOT/etc/systemd/journald.conf.d/gate.conf" "SystemMaxUse=64M"

# 6. The gate: a venv per release, current -> the new one; the update tool beside them.
mkdir -p "$ROOT/opt/gate/bin"
copy() { cmp -s "$1" "$2" || install -m "$3" "$1" "$2"; }  # a second run leaves them as they are
copy "$release_script" "$ROOT/opt/gate/bin/gate-release" 0755
[ ! -f "$FOLDER/requirements.lock" ] || copy "$FOLDER/requirements.lock" "$ROOT/opt/gate/requirements.lock" 0644
GATE_LOCK="$ROOT/opt/gate/requirements.lock" GATE_START_CHECK="${GATE_START_CHECK:-true}" \
  "$ROOT/opt/gate/bin/gate-release" update "${wheels[0]}"

# 7. The machine around it: user, /etc/gate, /var/lib/gate, the units enabled.
if [ -n "$ROOT" ]; then
  "$ROOT/opt/gate/current/bin/gate" install --destdir "$ROOT"
else
  /opt/gate/current/bin/gate install
fi

say "done. Next: edit /etc/gate/gate.toml, put the township's salt in /etc/gate/person-salt,"
say "enroll (sudo -u gate /opt/gate/current/bin/gate enroll ...) and reboot (docs/install-pi.md)."
