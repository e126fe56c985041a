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
from tests.helpers import SAMPLES, documented_commands, until
from tests.interop.repos import Commit, day, fixture, oxidized_repo, oxidized_text

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
                if argv[0] in {"sites", "list", "show", "diff", "check-config", "grep"}]
    assert {argv[0] for _, argv in runnable} == {"sites", "list", "show", "diff", "check-config", "grep"}
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


async def test_grep_prints_every_match_with_secrets_and_exits_like_grep(tmp_path: Path, simulator: Simulator) -> None:
    """`backupbot grep` searches the real text (the CLI holds the database), prints each device's
    lines with numbers, sections and context, `--json` for scripts; exit 1 when nothing matches,
    2 for a pattern that can't be used; `--history` names the version a line appeared in."""
    r1, r2 = SimDevice("r1"), SimDevice("r2", ros_version="6.49.7")
    cfg = str(await site(tmp_path, simulator, r1, r2))
    assert (await backupbot("--config", cfg, "backup"))[0] == 0

    code, out, err = await backupbot("--config", cfg, "grep", "-E", r"password=l2tp-[0-9a-f]{8}")
    assert code == 0, err
    assert out.startswith("grep regex “password=l2tp-[0-9a-f]{8}”: 2 devices, 2 lines — searched the latest "
                          "backups of 2 devices\n")
    assert out.count("- /ppp secret\n") == 2  # the section's own line, just above the match
    assert out.count(": add local-address=10.99.0.1 name=branch-office password=l2tp-") == 2

    code, out, _ = await backupbot("--config", cfg, "grep", "-i", "WINBOX", "lab", "r2", "--json")
    found = json.loads(out)
    assert code == 0 and (found["devices_matched"], found["lines"], found["complete"]) == (1, 1, True)
    (device,) = found["devices"]
    (hit,) = device["hits"]
    assert (device["device"], hit["section"], len(hit["before"]), len(hit["after"])) == ("r2", "/ip firewall filter", 2, 2)
    assert "winbox" in hit["text"] and device["version"]["routeros"] == "6.49.7"

    assert (await backupbot("--config", cfg, "grep", "no-such-text"))[0] == 1
    code, _, err = await backupbot("--config", cfg, "grep", "-E", "(a+")
    assert code == 2 and err.strip() == (
        "backupbot: Not a valid regular expression: missing ), unterminated subpattern at position 0.")
    code, _, err = await backupbot("--config", cfg, "grep", "winbox", "lab", "r9")
    assert code == 1 and 'Unknown device "r9"' in err

    r1.change(1)
    await backupbot("--config", cfg, "backup")
    versions = json.loads((await backupbot("--config", cfg, "list", "lab", "r1", "--json"))[1])
    code, out, _ = await backupbot("--config", cfg, "grep", "--history", "block scanner", "lab", "r1")
    assert code == 0
    assert f"appeared in #{versions[0]['id']} (" in out and "still there (line" in out


# -- import and export (bot.interop) ------------------------------------------------------------------


def history_config(tmp_path: Path, **top: object) -> str:
    config = {
        "storage": {"path": "db/backups.db"},
        "defaults": {"username": "backup", "password": "${ROUTER_PASSWORD}"},
        "sites": {"lab": {"devices": [{"name": "ap-1", "host": "10.0.0.2"}, {"name": "edge-1", "host": "10.0.0.3"}]},
                  "riga": {"devices": [{"name": "gw", "host": "10.1.0.1"}]}},
        **top,
    }
    path = tmp_path / "backupbot.yml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def oxidized_history(tmp_path: Path) -> Path:
    """An Oxidized repository of real fixture sequences: a noise commit (capxl-3: only the date line),
    a group folder, an unknown node, and a node whose file is RouterOS's error message."""
    ox = oxidized_text
    return oxidized_repo(tmp_path / "oxidized.git", [
        Commit(day(1), {"ap-1": ox(fixture("seq-capxl-1.rsc"), keep_date=True), "riga/gw": ox(fixture("seq-praze-1.rsc")),
                        "printer": ox(fixture("v6-ccr1009-sunny.rsc")),
                        "edge-1": b"expected end of command (line 1 column 9)\n"}),
        Commit(day(2), {"ap-1": ox(fixture("seq-capxl-2.rsc"), keep_date=True)}),
        Commit(day(3), {"ap-1": ox(fixture("seq-capxl-3.rsc"), keep_date=True)}),
        Commit(day(4), {"riga/gw": ox(fixture("seq-praze-2.rsc"))})])


async def test_import_oxidized_as_documented(tmp_path: Path) -> None:
    """`backupbot import oxidized`: a dry run, the import (with a git mirror getting it), the same again,
    `list` naming where versions came from, and the mistakes a person makes."""
    repo = str(oxidized_history(tmp_path))
    cfg = history_config(tmp_path, git={"path": "mirror"})

    code, out, err = await backupbot("import", "oxidized", repo, "--dry-run", "--config", cfg)
    assert code == 1 and "Traceback" not in err  # edge-1's file is refused
    assert "2 versions to store (2024-01-01 02:00 → 2024-01-02 02:00); 1 commit without a change" in out
    assert "dry run: nothing written" in out and stored_versions(tmp_path / "db" / "backups.db") == 0

    code, out, _ = await backupbot("--config", cfg, "import", "oxidized", repo)
    rows = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert code == 1
    assert "lab/ap-1" in rows["ap-1"] and "2 versions stored" in rows["ap-1"]
    assert "riga/gw" in rows["riga/gw"] and "2 versions stored" in rows["riga/gw"]
    assert "refused: RouterOS error: expected end of command (line 1 column 9)" in rows["edge-1"]
    assert 'skipped: no device named "printer" in the config' in rows["printer"]
    assert "4 versions of 2 devices stored (run #1); 1 skipped; 1 refused" in out
    assert stored_versions(tmp_path / "db" / "backups.db") == 4
    # The mirror got the history, date by date, before the command returned.
    mirrored = subprocess.run(["git", "log", "--reverse", "--format=%ad %s", "--date=short"], cwd=tmp_path / "mirror",
                              capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split(" History import #1: ")[0] for line in mirrored] == ["2024-01-01", "2024-01-02", "2024-01-04"]

    code, out, _ = await backupbot("import", "oxidized", repo, "--config", cfg)
    assert "2 versions already stored" in out and "nothing new" in out
    assert stored_versions(tmp_path / "db" / "backups.db") == 4

    code, out, _ = await backupbot("list", "lab", "ap-1", "--config", cfg)
    assert code == 0 and out.splitlines()[0].split()[-1] == "FROM"
    assert [line.split()[-1] for line in out.splitlines()[2:]] == ["import", "import"]
    code, out, _ = await backupbot("list", "lab", "ap-1", "--json", "--config", cfg)
    assert [v["origin"] for v in json.loads(out)] == ["import", "import"]

    for argv, exit_code, message in [
        (["import", "oxidized", repo, "--site", "lb"], 1, 'Unknown site "lb". Did you mean: lab?'),
        (["import", "oxidized", str(tmp_path), "--site", "lab"], 1, "is not a git repository"),
        (["import", "oxidized", repo, "--site", "lab", "--site-from", "group"], 2, "not allowed with argument"),
        (["import", "files", str(tmp_path)], 2, "the following arguments are required: --site"),
    ]:
        code, _, err = await backupbot(*argv, "--config", cfg)
        assert code == exit_code and message in err and "Traceback" not in err, (argv, err)


async def test_import_files_then_export_git_as_documented(tmp_path: Path) -> None:
    cfg = history_config(tmp_path)
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "gw_20240101-0300.rsc").write_bytes(fixture("seq-praze-1.rsc"))
    (folder / "gw_20240301-0300.rsc").write_bytes(fixture("seq-praze-2.rsc"))
    code, out, err = await backupbot("import", "files", str(folder), "--site", "riga", "--config", cfg)
    assert code == 0, err
    assert "riga/gw" in out and "2 versions stored (2024-01-01 03:00 → 2024-03-01 03:00)" in out  # UTC: no zone set

    code, out, err = await backupbot("export", "git", str(tmp_path / "moved"), "--raw", "--config", cfg)
    assert code == 0, err
    assert out == f"{tmp_path / 'moved'}: 2 versions of 1 device, one commit each (exact exports, secrets included)\n"
    assert (tmp_path / "moved" / "riga" / "gw.rsc").read_bytes() == fixture("seq-praze-2.rsc")
    code, _, err = await backupbot("export", "git", str(tmp_path / "moved"), "--config", cfg)
    assert code == 1 and "is not empty" in err


async def test_backup_with_a_git_mirror(tmp_path: Path, simulator: Simulator) -> None:
    """`backupbot backup` (from cron, without serve) commits its run to the mirror before it exits."""
    cfg = await site(tmp_path, simulator, SimDevice("r1"))
    config = yaml.safe_load(cfg.read_text())
    cfg.write_text(yaml.safe_dump({**config, "git": {"path": "mirror"}}))
    code, _, err = await backupbot("backup", "--config", str(cfg))
    assert code == 0, err
    files = subprocess.run(["git", "ls-files"], cwd=tmp_path / "mirror", capture_output=True, text=True,
                           check=True).stdout
    assert files == "lab/r1.rsc\n"


async def test_an_import_killed_midway_is_finished_by_running_it_again(tmp_path: Path) -> None:
    """SIGKILL an import while it stores a long history: what it stored is a sound beginning of it, and
    the same command again stores the rest, ending where an uninterrupted import does."""
    ox = oxidized_text
    commits = [Commit(day(n), {"ap-1": ox(fixture("seq-capxl-1.rsc" if n % 2 else "seq-capxl-2.rsc")),
                               "riga/gw": ox(fixture(f"seq-praze-{n % 3 + 1}.rsc"))}) for n in range(1, 41)]
    repo = str(oxidized_repo(tmp_path / "oxidized.git", commits))
    reference = tmp_path / "reference"
    reference.mkdir()
    code, _, err = await backupbot("import", "oxidized", repo, "--config", history_config(reference))
    assert code == 0, err
    db = reference / "db" / "backups.db"
    want = sql_rows(db, "SELECT d.name, v.first_seen, hex(v.norm_hash) FROM versions v JOIN devices d"
                        " ON d.id = v.device_id ORDER BY v.id")
    assert len(want) == 80

    cfg = history_config(tmp_path)
    proc = await spawn("import", "oxidized", repo, "--config", cfg)
    await until(lambda: stored_versions(tmp_path / "db" / "backups.db") >= 10 or proc.returncode is not None)
    proc.kill()
    await proc.wait()
    got = sql_rows(tmp_path / "db" / "backups.db", "SELECT d.name, v.first_seen, hex(v.norm_hash) FROM versions v"
                   " JOIN devices d ON d.id = v.device_id ORDER BY v.id")
    assert proc.returncode == -signal.SIGKILL and 10 <= len(got) < 80
    assert got == want[:len(got)]  # a beginning of the history, in the order an uninterrupted import stores it

    code, out, err = await backupbot("import", "oxidized", repo, "--config", cfg)
    assert code == 0, err
    assert "not imported" not in out
    assert sql_rows(tmp_path / "db" / "backups.db", "SELECT d.name, v.first_seen, hex(v.norm_hash) FROM versions v"
                    " JOIN devices d ON d.id = v.device_id ORDER BY v.id") == want


def sql_rows(db: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(query).fetchall()


async def test_import_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    repo = str(oxidized_history(tmp_path))
    code, drawn, out = await on_a_terminal("import", "oxidized", repo, "--config", history_config(tmp_path),
                                           stream="stderr")
    assert code == 1
    assert b"] 3/3 devices read, 1 refused" in drawn and b"] 4/4 versions stored, 0 stopped" in drawn
    assert b"\r" not in out and b"SOURCE" in out  # the report itself goes to stdout, clean
