"""`gate demo` in a real terminal, as a newcomer runs `make demo`: tmux at 80x24, the
console drawn by Textual on a real pseudo-terminal, keys sent as a person types them,
and ctrl+c giving back a clean shell. What is checked is what the pane shows."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.cells import cell_len

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 80, 24


class Tmux:
    """A tmux server of its own (its own socket), one session running a bare bash."""

    def __init__(self, tmp: Path) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is not installed: `make test` installs it (Makefile TEST_DEBS)", pytrace=False)
        self.name = f"gate-test-{os.getpid()}"
        env = {"HOME": str(tmp), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color",
               "LANG": "C.UTF-8", "PS1": "$ ", "XDG_STATE_HOME": str(tmp / "state"), "PYTHONPATH": str(ROOT)}
        shell = "env -i " + " ".join(f"{k}='{v}'" for k, v in env.items()) + " bash --norc --noprofile"
        self.tmux("new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), "-s", "gate", shell)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.name, "-f", "/dev/null", *args], check=True,
                              capture_output=True, text=True, timeout=10).stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "gate", *keys)

    def pane(self) -> list[str]:
        return self.tmux("capture-pane", "-p", "-t", "gate").rstrip("\n").split("\n")

    def wait(self, predicate, timeout: float, what: str) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.pane()
            if predicate(lines):
                return lines
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; the pane:\n" + "\n".join(self.pane()))

    def shell_pid(self) -> int:
        return int(self.tmux("display-message", "-p", "-t", "gate", "#{pane_pid}").strip())

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True, timeout=10)


def session_members(leader: int) -> list[int]:
    """The processes in the shell's session but the shell itself: what the demo left running."""
    left = []
    for d in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        if d.isdigit() and int(d) != leader and int(stat.rsplit(") ", 1)[1].split()[3]) == leader:
            left.append(int(d))
    return left


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path)
    yield t
    t.close()


def test_gate_demo_in_tmux_at_80x24_and_ctrl_c_gives_back_a_clean_shell(tmux, tmp_path):
    tmux.wait(lambda lines: any(line.startswith("$") for line in lines), 10, "the shell")
    tmux.keys(f"cd {tmp_path} && {sys.executable} -m kiosk.cli demo; echo EXIT=$?", "Enter")
    screen = tmux.wait(lambda lines: "值守 赵*" in lines[0] and "放行" in "\n".join(lines), 120,
                       "the console with the guard on duty and a first decision")
    # the status line: the guard and the leader, then the devices, sync, lists and the clock
    assert "值守 赵* · 带班 钱*" in screen[0] and "低风险" in screen[0]
    assert "测温" in screen[1] and "摄像头" in screen[1] and "待上传" in screen[1] and "时间" in screen[1]
    # the Chinese key bar, on the last two rows, whole
    bar = screen[-2] + screen[-1]
    for word in ("c 查询", "d 登记", "t 手测体温", "w 问询", "m 已戴口罩", "o 人工放行", "r 拒绝查验",
                 "j 紧急外出", "a 确认上报", "s 上岗", "e 交班", "x 取消", "f 今日统计", "b 日报预览"):
        assert word in bar, bar
    # aligned: wide characters take two cells, so every row fits 80 and the panel's right
    # border stands in the last column on every row of the panel
    assert all(cell_len(line) <= WIDTH for line in screen), screen
    panel = [line for line in screen if line.startswith(("┃", "┏", "┗"))]
    assert len(panel) >= 5 and all(cell_len(line) == WIDTH and line[-1] in "┃┓┛" for line in panel), panel

    tmux.keys("f")  # today's figures, from the key bar
    tmux.wait(lambda lines: any("今日统计（本卡口）" in line for line in lines), 20, "today's figures")
    figures = tmux.pane()
    assert any(re.search(r"共\d+人次", line) for line in figures), figures
    tmux.keys("Escape")
    tmux.wait(lambda lines: not any("今日统计（本卡口）" in line for line in lines), 10, "the figures closed")

    shell = tmux.shell_pid()
    tmux.keys("C-c")
    # the demo's status, then the shell's prompt (printed a moment later on a busy machine)
    after = tmux.wait(lambda lines: any(line.startswith("EXIT=") for line in lines) and lines[-1:] == ["$"], 90,
                      "the demo to end and the shell's prompt")
    text = "\n".join(after)
    assert "EXIT=130" in text and "已中断，模拟卡口已停止" in text, text
    assert "Traceback" not in text and "\x1b" not in text, text
    assert after[-1] == "$", after  # a clean prompt on its own line
    tmux.keys("echo back-$((40+2))", "Enter")  # the terminal answers as a shell again
    tmux.wait(lambda lines: "back-42" in lines, 10, "the shell answering")
    # nothing the demo started is left in the shell's session (the decoder's worker and
    # multiprocessing's tracker see their parent gone and exit within a moment)
    deadline = time.monotonic() + 15
    while session_members(shell) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert session_members(shell) == []
