"""The `backupbot` command end to end: a real process, real SSH to the simulator, a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from bot.ssh.simulator import SimDevice, Simulator
from tests.helpers import SAMPLES, documented_commands

PASSWORD = "cli-Pa55"
ENV = {"PATH": "/usr/bin:/bin", "ROUTER_PASSWORD": PASSWORD}


async def spawn(*args: str, cwd: Path | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=ENV, cwd=cwd)


async def backupbot(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run `python -m bot ARGS` as a separate process."""
    proc = await spawn(*args, cwd=cwd)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def on_a_terminal(*args: str, stream: str, env: Mapping[str, str] = ENV) -> tuple[int, bytes, bytes]:
    """Run `python -m bot ARGS` with `stream` ("stdout" or "stderr") on a terminal (a pty) and the
    other piped; return the exit code, what the terminal showed and what went down the pipe."""
    leader, follower = pty.openpty()
    pipes = {"stdout": asyncio.subprocess.PIPE, "stderr": asyncio.subprocess.PIPE, stream: follower}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, env=dict(env), **pipes)
    os.close(follower)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    assert proc.returncode is not None
    return proc.returncode, drawn, err if stream == "stdout" else out


def stored_versions(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM versions").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


async def site(tmp_path: Path, sim: Simulator, *devices: SimDevice, concurrency: int = 10) -> Path:
    """Start the devices and write a config file for them (site "lab"); return its path."""
    for d in devices:
        d.password = PASSWORD
        sim.add(d)
    await sim.start()
    config = {
        "storage": {"path": "db/backups.db"},
        "concurrency": concurrency,
        "defaults": {"username": "backup", "password": "${ROUTER_PASSWORD}", "timeout": 3},
        "sites": {"lab": {"devices": [{"name": d.name, "host": d.host, "port": d.port} for d in devices]}},
    }
    path = tmp_path / "backupbot.yml"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_backup_list_show_diff_round_trip(tmp_path: Path, simulator: Simulator) -> None:
    """Back up, change, back up; every read command then shows what happened, in text and --json."""
    r1, r2 = SimDevice("r1"), SimDevice("r2", ros_version="6.49.7")
    cfg = str(await site(tmp_path, simulator, r1, r2))

    code, out, err = await backupbot("--config", cfg, "backup", "--json")
    assert code == 0, err
    first = json.loads(out)
    assert [d["status"] for d in first["devices"]] == ["new", "new"]
    assert first["totals"] == {"new": 2, "changed": 0, "unchanged": 0, "failed": 0}

    r1.change(1)
    code, out, _ = await backupbot("--config", cfg, "backup", "lab")
    assert code == 0
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("lab ")}
    assert "changed" in lines["r1"] and "+1 -0" in lines["r1"]
    assert "unchanged" in lines["r2"]
    assert "2 devices in" in out

    code, out, _ = await backupbot("--config", cfg, "list", "lab", "r1", "--json")
    versions = json.loads(out)
    new_id, old_id = versions[0]["id"], versions[1]["id"]
    assert new_id > old_id and versions[0]["routeros"] == "7.20.1"

    code, out, _ = await backupbot("--config", cfg, "diff", str(old_id), str(new_id))
    assert code == 0
    assert "\n+add action=drop chain=forward" in out and "@@ -" in out and "/ip firewall" in out

    code, out, _ = await backupbot("--config", cfg, "sites", "--json")
    assert json.loads(out) == [{"site": "lab", "devices": 2, "last_run": json.loads(out)[0]["last_run"], "ok": 2,
                                "changed": 1, "failed": 0, "never": 0, "retired": 0}]

    code, out, _ = await backupbot("--config", cfg, "list", "lab", "--json")
    assert {d["device"]: d["latest"]["id"] for d in json.loads(out)}["r1"] == new_id

    code, out, _ = await backupbot("--config", cfg, "show", str(new_id), "--json")
    shown = json.loads(out)
    assert shown["id"] == new_id and "/ip firewall filter" in shown["config"]

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", cfg, "show", str(new_id), "--raw",
        stdout=asyncio.subprocess.PIPE, env={"ROUTER_PASSWORD": PASSWORD})
    raw, _ = await proc.communicate()
    assert raw.startswith(b"# ") and b"\r\n" in raw and b"by RouterOS 7.20.1" in raw
    assert raw.endswith(r1.export_text("/export show-sensitive").split(b"\r\n", 5)[5])  # byte-exact body


async def test_a_failed_device_means_exit_code_1_with_its_reason(tmp_path: Path, simulator: Simulator) -> None:
    """The summary names each failure and why; the exit code tells scripts something failed."""
    cfg = str(await site(tmp_path, simulator, SimDevice("good"), SimDevice("bad", behaviour="auth_fail")))
    code, out, err = await backupbot("--config", cfg, "backup")
    assert code == 1
    bad = next(line for line in out.splitlines() if " bad " in line)
    assert "failed" in bad and "authentication failed" in bad
    assert "1 new, 0 changed, 0 unchanged, 1 failed" in out
    assert "Traceback" not in err


async def test_unknown_names_get_suggestions_not_tracebacks(tmp_path: Path, simulator: Simulator) -> None:
    """A typo in a site or device name is answered with the closest matches and exit code 1."""
    cfg = str(await site(tmp_path, simulator, SimDevice("core-1")))
    code, _, err = await backupbot("--config", cfg, "list", "lba")
    assert code == 1 and 'Unknown site "lba". Did you mean: lab?' in err and "Traceback" not in err
    code, _, err = await backupbot("--config", cfg, "backup", "lab", "core1")
    assert code == 1 and "Did you mean: core-1?" in err
    code, _, err = await backupbot("--config", cfg, "show", "424242")
    assert code == 1 and "No backup with id 424242" in err


async def test_bad_config_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    """A broken config file is refused at start with each problem and its place; no traceback."""
    path = tmp_path / "backupbot.yml"
    path.write_text("defaults: {username: u, password: '${NOPE}', port: 70000}\n"
                    "sites:\n  a:\n    devices:\n      - {name: r1}\n      - {name: r1, host: h}\n")
    for command in ("backup", "check-config", "sites"):
        code, _, err = await backupbot("--config", str(path), command)
        assert code == 2, command
        assert "Traceback" not in err
        for place in ("defaults.password", "defaults.port", "sites.a.devices[0].host", "sites.a.devices[1].name"):
            assert place in err, (place, err)
    code, _, err = await backupbot("--config", str(tmp_path / "missing.yml"), "check-config")
    assert code == 2 and "no such file" in err


async def test_check_config_accepts_a_good_file(tmp_path: Path, simulator: Simulator) -> None:
    """check-config only validates: it says OK and counts sites and devices."""
    cfg = str(await site(tmp_path, simulator, SimDevice("r1"), SimDevice("r2")))
    code, out, _ = await backupbot("--config", cfg, "check-config")
    assert code == 0 and "OK (1 sites, 2 devices)" in out


async def test_killed_mid_run_leaves_a_consistent_database(tmp_path: Path, simulator: Simulator) -> None:
    """SIGKILL during a backup: what was committed stays intact and the next run just works."""
    devices = [SimDevice(f"r{i}", delay=0.25, size=40_000) for i in range(8)]
    cfg = await site(tmp_path, simulator, *devices, concurrency=2)
    db = tmp_path / "db" / "backups.db"
    proc = await spawn("--config", str(cfg), "backup")
    for _ in range(600):  # kill as soon as the first versions are committed
        if stored_versions(db) >= 2:
            break
        await asyncio.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    await proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored_before = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
    assert 0 < stored_before < len(devices)  # killed part-way through, as intended

    code, out, err = await backupbot("--config", str(cfg), "backup", "--json")
    assert code == 0, err
    statuses = [d["status"] for d in json.loads(out)["devices"]]
    assert statuses.count("unchanged") == stored_before
    assert statuses.count("new") == len(devices) - stored_before


async def test_demo_runs_on_embedded_defaults(tmp_path: Path) -> None:
    """`backupbot demo` needs no router and no Slack: it backs up simulated devices twice and shows a diff."""
    code, out, err = await backupbot("demo", "--dir", str(tmp_path / "demo"))
    assert code == 0, err
    assert "== First backup: everything is new ==" in out
    assert "unreachable: connection refused" in out  # a failure is shown, not hidden
    assert "RouterOS 7.19.3 → 7.20.1, config unchanged" in out
    assert "\n+add " in out and "@@ " in out
    db = tmp_path / "demo" / "backups.db"
    assert f"Database: {db}" in out and db.exists()
    code, out, _ = await backupbot("--config", str(tmp_path / "demo" / "backupbot.yml"), "list", "hq", "--json")
    assert code == 0 and {d["device"] for d in json.loads(out)} == {"core-1", "edge-1", "ap-1"}


async def test_a_terminal_gets_a_progress_bar(tmp_path: Path, simulator: Simulator) -> None:
    """On a terminal, `backup` draws devices done/total and failures as it goes; pipes get none."""
    cfg = str(await site(tmp_path, simulator, SimDevice("r1"), SimDevice("r2"), SimDevice("bad", behaviour="auth_fail")))
    code, drawn, out = await on_a_terminal("--config", cfg, "backup", stream="stderr")
    assert code == 1
    assert b"3/3 devices, 1 failed" in drawn and b"\r[" in drawn
    assert b"devices, " not in out.split(b"\n\n")[0]  # the bar went to the terminal, not into the table


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding what `backupbot demo --dir DIR` leaves behind: backupbot.yml and its database."""
    directory = tmp_path_factory.mktemp("demo")
    done = subprocess.run([sys.executable, "-m", "bot", "demo", "--dir", str(directory)], env=ENV,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return directory


async def demo_ids(cfg: str) -> tuple[int, int]:
    """core-1's two versions (the demo changes it between its two runs): older, newer."""
    code, out, err = await backupbot("list", "hq", "core-1", "--json", "--config", cfg)
    assert code == 0, err
    newer, older = (v["id"] for v in json.loads(out))
    return older, newer


async def test_documented_commands_work_on_the_demo_database(demo: Path) -> None:
    """Every read-only command README.md and docs/ show (tests/test_docs_commands.py finds them) runs
    as written, with the demo's names and ids for SITE, DEVICE and ID, and `--config` after the command."""
    cfg = str(demo / "backupbot.yml")
    older, newer = await demo_ids(cfg)
    samples = {**SAMPLES, "SITE": "hq", "DEVICE": "core-1", "ID": str(newer), "ID1": str(older), "ID2": str(newer),
               "DIR": str(demo), "FILE": cfg}
    runnable = [(where, argv) for where, argv in documented_commands(samples)
                if argv[0] in {"sites", "list", "show", "diff", "check-config"}]
    assert {argv[0] for _, argv in runnable} == {"sites", "list", "show", "diff", "check-config"}
    for where, argv in runnable:
        code, out, err = await backupbot(*argv, "--config", cfg)
        assert code == 0 and out and "Traceback" not in err, (where, argv, err)


async def test_global_options_stand_before_or_after_the_command(demo: Path) -> None:
    """`--config` and `-v` work on either side of the command; without --config, ./backupbot.yml is read."""
    cfg = str(demo / "backupbot.yml")
    outputs = []
    for argv in (["--config", cfg, "-v", "sites"], ["sites", "--config", cfg, "-v"], ["-v", "sites", "--config", cfg]):
        code, out, err = await backupbot(*argv)
        assert code == 0, (argv, err)
        outputs.append(out)
    assert outputs[0] == outputs[1] == outputs[2] and outputs[0].splitlines()[2].startswith("hq ")
    code, out, _ = await backupbot("check-config", cwd=demo)
    assert code == 0 and out == "backupbot.yml: OK (2 sites, 5 devices)\n"
    code, _, err = await backupbot("check-config", cwd=demo / "..")
    assert code == 2 and "backupbot.yml" in err and "no such file" in err


async def test_diff_is_coloured_only_on_a_terminal_without_no_color_or_term_dumb(demo: Path) -> None:
    """Colour codes reach a terminal; never a pipe, and not when NO_COLOR is set or TERM=dumb."""
    cfg = str(demo / "backupbot.yml")
    older, newer = await demo_ids(cfg)
    diff = ("diff", str(older), str(newer), "--config", cfg)
    code, drawn, _ = await on_a_terminal(*diff, stream="stdout", env={**ENV, "TERM": "xterm"})
    assert code == 0 and b"\x1b[32m+" in drawn and b"\x1b[36m@@" in drawn
    for env in ({"NO_COLOR": "1"}, {"TERM": "dumb"}):
        code, drawn, _ = await on_a_terminal(*diff, stream="stdout", env={**ENV, **env})
        assert code == 0 and b"\n+" in drawn and b"\x1b[" not in drawn, env
    code, out, _ = await backupbot(*diff)
    assert code == 0 and "\n+" in out and "\x1b[" not in out


async def test_demo_takes_no_config_and_usage_errors_exit_2() -> None:
    """demo writes its own config, so --config is refused on either side, as a usage error (exit 2)."""
    code, _, err = await backupbot("--config", "mine.yml", "demo")
    assert code == 2 and "demo writes its own config file into --dir; it takes no --config" in err
    code, _, err = await backupbot("demo", "--config", "mine.yml")
    assert code == 2 and "unrecognized arguments: --config mine.yml" in err
    code, _, err = await backupbot("serve", "--no-such-option")
    assert code == 2 and "unrecognized arguments" in err
