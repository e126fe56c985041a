"""Tests for bot.config: the documented example loads, and every problem is reported at its place."""

from __future__ import annotations

import copy
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config.load import load_settings, parse_settings
from bot.core.errors import ConfigError
from bot.core.models import GitSettings

SECRET = "s3cr3t-Pa55"
ENV = {"ROUTER_PASSWORD": SECRET}

EXAMPLE = """\
storage:
  path: data/backups.db            # SQLite file, created if missing
slack:                             # used by the Slack issue; accepted and validated now
  channel: C0123456789
  admins: [U0123456789]
schedule:                          # used by the schedule issue; accepted and validated now
  times: ["02:00"]
  timezone: Europe/Riga
concurrency: 50                    # SSH sessions at once, across all sites
defaults:                          # every device inherits these; a site or device may override any
  username: backup
  password: ${ROUTER_PASSWORD}     # ${VAR} is read from the environment
  port: 22
  timeout: 120                     # seconds for one device's whole backup
  export: auto                     # auto = "/export show-sensitive" on v7, "/export" on v6
sites:
  site-a:
    devices:
      - {name: core-1, host: 10.0.0.1}
      - {name: ap-1, host: 10.0.0.2, port: 2222, username: admin, key_file: KEY_FILE}
"""


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "id_ed25519"
    path.parent.mkdir()
    path.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    return path


@pytest.fixture
def example(tmp_path: Path, key_file: Path) -> dict[str, Any]:
    """The example as a Python object, for tests that change one thing and dump it back."""
    return yaml.safe_load(EXAMPLE.replace("KEY_FILE", str(key_file)))


def write(tmp_path: Path, data: object, name: str = "backupbot.yml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def problems(tmp_path: Path, data: object, env: dict[str, str] = ENV) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, data), env)
    assert SECRET not in str(info.value)
    return info.value.problems


def test_full_example_loads_with_precedence(tmp_path: Path, key_file: Path) -> None:
    """The documented example loads; device values override site/defaults, built-ins fill the rest."""
    settings = load_settings(write(tmp_path, EXAMPLE.replace("KEY_FILE", str(key_file))), ENV)
    core, ap = settings.sites["site-a"].devices
    assert (core.name, core.host, core.port, core.username, core.key_file) == ("core-1", "10.0.0.1", 22, "backup", None)
    assert (ap.name, ap.host, ap.port, ap.username, ap.key_file) == ("ap-1", "10.0.0.2", 2222, "admin", str(key_file))
    assert core.password == ap.password == SECRET
    assert core.timeout == 120.0 and core.export == "auto" and core.site == "site-a"
    assert settings.storage_path == tmp_path / "data" / "backups.db"
    assert settings.concurrency == 50
    assert settings.slack.channel == "C0123456789" and settings.slack.admins == {"U0123456789"}
    assert settings.schedule.times == ("02:00",) and settings.schedule.timezone == "Europe/Riga"
    assert settings.schedule.jitter == 0 and settings.schedule.quiet is False  # "02:00" means 02:00; digests daily
    assert SECRET not in repr(settings)


def test_site_overrides_defaults_and_device_overrides_site(tmp_path: Path, example: dict[str, Any]) -> None:
    """Site keys override defaults for its devices, device keys override the site; Slack/schedule overrides land on Site."""
    example["sites"]["site-b"] = {
        "port": 8022, "timeout": 30, "export": "/export terse", "username": "ops",
        "channel": "G0123456789", "times": ["03:15", "15:15"], "timezone": "UTC",
        "allowed_users": ["U0AAAAAAA"], "allowed_channels": ["C0BBBBBBB"], "download_users": ["W0CCCCCCC"],
        "devices": [{"name": "r1", "host": "r1.example.net"},
                    {"name": "r2", "host": "10.1.0.2", "port": 22, "timeout": 5.5}],
    }
    settings = load_settings(write(tmp_path, example), ENV)
    site = settings.sites["site-b"]
    r1, r2 = site.devices
    assert (r1.port, r1.timeout, r1.export, r1.username) == (8022, 30.0, "/export terse", "ops")
    assert (r2.port, r2.timeout, r2.username) == (22, 5.5, "ops")
    assert site.channel == "G0123456789" and site.times == ("03:15", "15:15") and site.timezone == "UTC"
    assert site.allowed_users == {"U0AAAAAAA"} and site.allowed_channels == {"C0BBBBBBB"}
    assert site.download_users == {"W0CCCCCCC"}
    assert settings.sites["site-a"].channel is None and settings.sites["site-a"].times is None
    assert settings.quiet("site-a") is False and settings.sites["site-a"].quiet is None
    assert list(settings.sites) == ["site-a", "site-b"]


def test_quiet_is_global_with_a_per_site_override(tmp_path: Path, example: dict[str, Any]) -> None:
    """schedule.quiet applies to every site without its own `quiet`; a site's own value wins either way."""
    example["schedule"]["quiet"] = True
    example["sites"]["site-b"] = {"quiet": False, "devices": [{"name": "r1", "host": "10.1.0.1"}]}
    example["sites"]["site-c"] = {"devices": [{"name": "r1", "host": "10.2.0.1"}]}
    settings = load_settings(write(tmp_path, example), ENV)
    assert [settings.quiet(s) for s in ("site-a", "site-b", "site-c")] == [True, False, True]
    example["schedule"]["quiet"] = False
    example["sites"]["site-c"]["quiet"] = True
    settings = load_settings(write(tmp_path, example), ENV)
    assert [settings.quiet(s) for s in ("site-a", "site-b", "site-c")] == [False, False, True]


def test_minimal_config_uses_builtin_defaults(tmp_path: Path) -> None:
    """Only sites are required; storage defaults to data/backups.db next to the config, port 22, timeout 120."""
    config = {"sites": {"hq": {"devices": [{"name": "gw", "host": "gw", "username": "u",
                                            "password": "${ROUTER_PASSWORD}"}]}}}
    settings = load_settings(write(tmp_path, config), ENV)
    gw = settings.devices()[0]
    assert (gw.port, gw.timeout, gw.export) == (22, 120.0, "auto")
    assert settings.storage_path == tmp_path / "data" / "backups.db"
    assert settings.concurrency == 50 and settings.schedule.times == ("02:00",)
    assert settings.stale_after == timedelta(hours=24)


def test_stale_after_hours_sets_the_stale_threshold(tmp_path: Path, example: dict[str, Any]) -> None:
    """`stale_after_hours: 36`: a device is stale after 36 h without a good backup (bot.core.stale)."""
    example["stale_after_hours"] = 36
    assert load_settings(write(tmp_path, example), ENV).stale_after == timedelta(hours=36)


def test_relative_paths_resolve_against_config_dir(tmp_path: Path, example: dict[str, Any],
                                                   key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """storage.path and key_file are relative to the config file's directory, not the working directory."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    example["storage"]["path"] = "state/db.sqlite"
    example["sites"]["site-a"]["devices"][1]["key_file"] = "keys/id_ed25519"
    settings = load_settings(write(tmp_path, example), ENV)
    assert settings.storage_path == tmp_path / "state" / "db.sqlite"
    assert settings.sites["site-a"].devices[1].key_file == str(key_file)
    example["storage"]["path"] = "/var/lib/backupbot/db.sqlite"
    assert load_settings(write(tmp_path, example), ENV).storage_path == Path("/var/lib/backupbot/db.sqlite")


def test_env_vars_expand_inside_strings_and_dollar_escapes(tmp_path: Path, example: dict[str, Any]) -> None:
    """${VAR} expands inside longer strings of other fields; $${ yields a literal ${; env comes only from the argument."""
    example["defaults"]["username"] = "bk-${SUFFIX}"
    example["defaults"]["export"] = "/export file=$${x}"
    example["sites"]["site-a"]["devices"][0]["host"] = "${CORE_HOST}"
    example["sites"]["site-a"]["devices"][0]["port"] = "${CORE_PORT}"
    env = {**ENV, "SUFFIX": "ro", "CORE_HOST": "core.example.net", "CORE_PORT": "2200"}
    core = load_settings(write(tmp_path, example), env).sites["site-a"].devices[0]
    assert (core.username, core.host, core.port, core.export) == ("bk-ro", "core.example.net", 2200, "/export file=${x}")
    os.environ["CORE_HOST_FROM_OS"] = "nope"
    try:
        example["sites"]["site-a"]["devices"][0]["host"] = "${CORE_HOST_FROM_OS}"
        assert problems(tmp_path, example, env) == [
            "sites.site-a.devices[0].host: environment variable CORE_HOST_FROM_OS is not set"]
    finally:
        del os.environ["CORE_HOST_FROM_OS"]


def test_parse_settings_accepts_an_already_parsed_object(tmp_path: Path, example: dict[str, Any]) -> None:
    """parse_settings validates a Python object and resolves relative storage against base_dir."""
    settings = parse_settings(example, ENV, tmp_path / "conf")
    assert settings.storage_path == tmp_path / "conf" / "data" / "backups.db"
    with pytest.raises(ConfigError) as info:
        parse_settings({"sites": {}}, ENV, tmp_path)
    assert info.value.problems == ["sites: at least one site is required"]


def _set(data: dict[str, Any], dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        data = data[int(part)] if isinstance(data, list) else data[part]
    if isinstance(data, list):
        data[int(last)] = value
    else:
        data[last] = value


DEV0, DEV1 = "sites.site-a.devices.0", "sites.site-a.devices.1"

# (change to the example, the exact problem reported)
CASES: list[tuple[str, object, str]] = [
    (f"{DEV1}.host", None, "sites.site-a.devices[1].host: must be a non-empty string, got nothing"),
    (f"{DEV0}.port", 70000, "sites.site-a.devices[0].port: must be an integer 1-65535, got 70000"),
    (f"{DEV0}.port", True, "sites.site-a.devices[0].port: must be an integer 1-65535, got true"),
    (f"{DEV0}.port", "ssh", 'sites.site-a.devices[0].port: must be an integer 1-65535, got "ssh"'),
    ("defaults.timeout", 0, "defaults.timeout: must be a number of seconds > 0, got 0"),
    ("concurrency", 0, "concurrency: must be an integer 1-1000, got 0"),
    ("concurrency", "many", 'concurrency: must be an integer 1-1000, got "many"'),
    ("stale_after_hours", 0, "stale_after_hours: must be an integer >= 1, got 0"),
    ("schedule.times", ["25:00"], 'schedule.times[0]: "25:00" is not HH:MM'),
    ("schedule.times", [], 'schedule.times: at least one time is required, e.g. ["02:00"]'),
    ("schedule.times", "02:00", 'schedule.times: must be a list of "HH:MM" times, e.g. ["02:00"], got "02:00"'),
    ("schedule.jitter", -1, "schedule.jitter: must be an integer >= 0, got -1"),
    ("schedule.quiet", "sometimes", 'schedule.quiet: must be true or false, got "sometimes"'),
    ("schedule.quiet", 1, "schedule.quiet: must be true or false, got 1"),
    ("sites.site-a.quiet", None, "sites.site-a.quiet: must be true or false, got nothing"),
    ("schedule.quite", True, 'schedule.quite: unknown key (did you mean "quiet"?)'),
    ("schedule.timezone", "Mars/Base",
     'schedule.timezone: unknown time zone "Mars/Base" (use an IANA name such as "Europe/Riga" or "UTC")'),
    ("sites.site-a.foo", 1, 'sites.site-a.foo: unknown key'),
    (f"{DEV0}.adress", "10.0.0.9", 'sites.site-a.devices[0].adress: unknown key (did you mean "host"?)'),
    ("defaults.timout", 5, 'defaults.timout: unknown key (did you mean "timeout"?)'),
    ("storage.pth", "x", 'storage.pth: unknown key (did you mean "path"?)'),
    ("slack.token", "x", "slack.token: unknown key"),
    ("web", {"base_url": "backupbot.example.com"}, 'web.base_url: "backupbot.example.com" is not a base URL like '
     "https://backupbot.example.com (http or https, a host, optionally a port and a path; no query)"),
    ("web", {"base_url": "https://bot.example.com/?x=1"}, 'web.base_url: "https://bot.example.com/?x=1" is not a base URL '
     "like https://backupbot.example.com (http or https, a host, optionally a port and a path; no query)"),
    ("web", {"link_minutes": 0}, "web.link_minutes: must be an integer 1-1440, got 0"),
    ("web", {"secret": "x"}, 'web.secret: unknown key'),
    ("site", {}, 'site: unknown key (did you mean "sites"?)'),
    ("defaults.export", "/system backup save",
     'defaults.export: must be "auto" or a command starting with "/export", got "/system backup save"'),
    (f"{DEV0}.name", "core 1", 'sites.site-a.devices[0].name: "core 1" is not a simple name: use up to 64 letters, '
     'digits, "-", "_" and "." (names are typed in Slack commands, separated by spaces)'),
    (f"{DEV0}.host", "10.0.0.1:2222", 'sites.site-a.devices[0].host: "10.0.0.1:2222": put the port in "port", not in the host'),
    (f"{DEV0}.key_file", "/nonexistent/id_rsa", "sites.site-a.devices[0].key_file: /nonexistent/id_rsa: no such file"),
    ("defaults.password", "${NOT_THERE}", "defaults.password: environment variable NOT_THERE is not set"),
    ("slack.channel", "#backups", 'slack.channel: "#backups" looks like a name; use the channel ID, like C0123456789 '
     "(Slack shows it in the channel's details or a member's profile)"),
    ("slack.channel", "U0123456789", 'slack.channel: "U0123456789" is a user ID; a channel ID like C0123456789 is expected'),
    ("slack.admins", ["U0123456789", "X12"],
     'slack.admins[1]: "X12" is not a Slack user ID (like U0123456789: uppercase letters and digits)'),
    ("slack.admins", "U0123456789", 'slack.admins: must be a list of Slack user IDs, got "U0123456789"'),
    ("sites.site-a.allowed_channels", ["c0123456789"], 'sites.site-a.allowed_channels[0]: "c0123456789" looks like a '
     "name; use the channel ID, like C0123456789 (Slack shows it in the channel's details or a member's profile)"),
    ("sites.site-a.devices", [], "sites.site-a.devices: at least one device is required"),
    ("sites", {}, "sites: at least one site is required"),
    ("sites", ["site-a"], 'sites: must be a mapping of site name to site, got a list'),
    ("defaults", "backup", 'defaults: must be a mapping, got "backup"'),
]


@pytest.mark.parametrize(("where", "value", "expected"), CASES, ids=[c[2].split(":")[0] for c in CASES])
def test_each_problem_is_reported_at_its_place(tmp_path: Path, example: dict[str, Any],
                                               where: str, value: object, expected: str) -> None:
    """One wrong value in the example yields exactly one problem naming its place and what is wrong."""
    _set(example, where, value)
    assert problems(tmp_path, example) == [expected]


def test_required_device_keys(tmp_path: Path, example: dict[str, Any]) -> None:
    """A device without name or host, and without a username anywhere, is told which key is required."""
    del example["defaults"]["username"]
    example["sites"]["site-a"]["devices"].append({"port": 22})
    assert problems(tmp_path, example) == [
        "sites.site-a.devices[0].username: required (set it on the device, its site or in defaults)",
        "sites.site-a.devices[2].name: required",
        "sites.site-a.devices[2].host: required",
        "sites.site-a.devices[2].username: required (set it on the device, its site or in defaults)",
    ]


def test_duplicate_device_names_in_a_site(tmp_path: Path, example: dict[str, Any]) -> None:
    """A device name repeated in one site points at the first one; the same name in another site is fine."""
    example["sites"]["site-a"]["devices"].append({"name": "core-1", "host": "10.0.0.3"})
    example["sites"]["site-b"] = {"devices": [{"name": "core-1", "host": "10.9.0.1"}]}
    assert problems(tmp_path, example) == [
        'sites.site-a.devices[2].name: duplicate device "core-1" in site "site-a" (first at devices[0])']


def test_site_name_must_be_a_simple_token(tmp_path: Path, example: dict[str, Any]) -> None:
    """Site names are typed in Slack commands, so spaces and slashes are refused at the site's place."""
    example["sites"]["head office"] = example["sites"].pop("site-a")
    assert problems(tmp_path, example) == [
        'sites.head office: "head office" is not a simple name: use up to 64 letters, digits, "-", "_" and "." '
        "(names are typed in Slack commands, separated by spaces)"]


def test_device_needs_password_or_key_file(tmp_path: Path, example: dict[str, Any]) -> None:
    """With no password anywhere, a device without key_file is an error; one with key_file is fine."""
    del example["defaults"]["password"]
    assert problems(tmp_path, example) == [
        "sites.site-a.devices[0]: needs a password or a key_file (on the device, its site or in defaults)"]


@pytest.mark.parametrize("literal", [SECRET, 12345, "x${ROUTER_PASSWORD}", "$${ROUTER_PASSWORD}"])
def test_literal_password_is_refused_without_echoing_it(tmp_path: Path, example: dict[str, Any], literal: object) -> None:
    """A password written in the file (anything but exactly ${VAR}) is refused, and the value is never shown."""
    example["sites"]["site-a"]["devices"][1]["password"] = literal
    found = problems(tmp_path, example)
    assert found == ["sites.site-a.devices[1].password: password must come from the environment, "
                     "e.g. ${ROUTER_PASSWORD}; credentials are not kept in files"]
    assert str(literal) not in "\n".join(found).replace("${ROUTER_PASSWORD}", "")


def test_empty_password_variable_is_refused(tmp_path: Path, example: dict[str, Any]) -> None:
    """An empty environment variable for the password is an error rather than a silent auth failure later."""
    assert problems(tmp_path, example, {"ROUTER_PASSWORD": ""}) == [
        "defaults.password: environment variable ROUTER_PASSWORD is empty"]


def test_unquoted_time_gets_a_quoting_hint(tmp_path: Path) -> None:
    """YAML 1.1 reads an unquoted 22:30 as the number 1350; the message says to quote it."""
    text = EXAMPLE.replace('times: ["02:00"]', "times: [22:30]").replace(", key_file: KEY_FILE", "")
    assert problems(tmp_path, text) == [
        'schedule.times[0]: write the time in quotes, e.g. "22:30" (unquoted, YAML reads it as the number 1350)']


def test_key_file_that_is_a_directory(tmp_path: Path, example: dict[str, Any]) -> None:
    """A key_file pointing at a directory names the path and says it is not a file."""
    example["defaults"]["key_file"] = str(tmp_path)
    assert problems(tmp_path, example) == [f"defaults.key_file: {tmp_path}: is not a file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_key_file(tmp_path: Path, example: dict[str, Any], key_file: Path) -> None:
    """A key_file this process cannot read names the path."""
    key_file.chmod(0)
    assert problems(tmp_path, example) == [
        f"sites.site-a.devices[1].key_file: {key_file}: is not readable by this process"]


def test_many_problems_are_all_reported_in_file_order(tmp_path: Path, key_file: Path) -> None:
    """Problems across sections, sites and devices are all listed at once, in the order they appear."""
    text = f"""\
slack: {{channel: general, admins: [U0123456789]}}
schedule: {{times: ["02:00", "24:00"], timezone: Mars/Base}}
concurrency: -5
defaults: {{username: backup, password: {SECRET}, port: 22}}
sites:
  site-a:
    timezone: Atlantis
    devices:
      - {{name: core-1, host: 10.0.0.1, port: 70000}}
      - {{name: ap-1, adress: 10.0.0.2, key_file: {key_file}}}
      - {{name: core-1, host: 10.0.0.3, export: show}}
  site-b:
    devices: []
  site-c:
    devices:
      - {{name: x, host: y, password: "${{MISSING}}"}}
"""
    assert problems(tmp_path, text) == [
        'slack.channel: "general" looks like a name; use the channel ID, like C0123456789 '
        "(Slack shows it in the channel's details or a member's profile)",
        'schedule.times[1]: "24:00" is not HH:MM',
        'schedule.timezone: unknown time zone "Mars/Base" (use an IANA name such as "Europe/Riga" or "UTC")',
        "concurrency: must be an integer 1-1000, got -5",
        "defaults.password: password must come from the environment, e.g. ${ROUTER_PASSWORD}; "
        "credentials are not kept in files",
        'sites.site-a.timezone: unknown time zone "Atlantis" (use an IANA name such as "Europe/Riga" or "UTC")',
        "sites.site-a.devices[0].port: must be an integer 1-65535, got 70000",
        'sites.site-a.devices[1].adress: unknown key (did you mean "host"?)',
        "sites.site-a.devices[1].host: required",
        'sites.site-a.devices[2].export: must be "auto" or a command starting with "/export", got "show"',
        'sites.site-a.devices[2].name: duplicate device "core-1" in site "site-a" (first at devices[0])',
        "sites.site-b.devices: at least one device is required",
        "sites.site-c.devices[0].password: environment variable MISSING is not set",
    ]


def test_yaml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    """A YAML syntax error is reported as file:line:column with the parser's reason."""
    path = write(tmp_path, "sites:\n  site-a:\n    devices: [\n  bad: : x\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, ENV)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:4:")
    write(tmp_path, "sites:\n  a: 1\n b: 2\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, ENV)
    assert info.value.problems == [f"{path}:3:2: expected <block end>, but found '<block mapping start>'"]


def test_duplicate_yaml_keys_are_reported(tmp_path: Path, key_file: Path) -> None:
    """A key repeated in one mapping (which YAML would silently overwrite) is reported with its line."""
    text = EXAMPLE.replace("KEY_FILE", str(key_file)) + "  site-a:\n    devices: [{name: x, host: y}]\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, ENV)
    assert info.value.problems == [f'{path}:21:3: duplicate key "site-a" (first on line 17)']


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config path that does not exist is one problem naming the path."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings("backupbot.yml", ENV)
    assert info.value.problems == ["backupbot.yml: no such file"]


@pytest.mark.parametrize(("text", "got"), [("- a\n- b\n", "a list"), ("just text\n", '"just text"'),
                                           ("# nothing yet\n", "an empty file")])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, got: str) -> None:
    """A file whose top level is a list, a scalar or empty says so."""
    assert problems(tmp_path, text) == [f"top level: must be a mapping with at least a sites section, got {got}"]


def test_no_password_value_in_any_message(tmp_path: Path, example: dict[str, Any]) -> None:
    """Even with the resolved password used wrongly elsewhere, messages never contain a password value."""
    example["defaults"]["password"] = "${ROUTER_PASSWORD}"
    broken = copy.deepcopy(example)
    broken["sites"]["site-a"]["devices"][0]["password"] = "hunter2"
    broken["sites"]["site-a"]["devices"][1]["password"] = {"value": SECRET}
    broken["sites"]["site-a"]["devices"][1]["port"] = 0
    found = problems(tmp_path, broken)
    assert len(found) == 3
    assert "hunter2" not in "\n".join(found) and SECRET not in "\n".join(found)


def test_web_section(tmp_path: Path, example: dict[str, Any]) -> None:
    """`web:` is off by default; a base URL loses its trailing slash; link_minutes defaults to 15."""
    assert parse_settings(example, ENV, tmp_path).web.base_url is None
    example["web"] = {"base_url": "https://backupbot.example.com:8443/ops/"}
    web = parse_settings(example, ENV, tmp_path).web
    assert (web.base_url, web.link_minutes) == ("https://backupbot.example.com:8443/ops", 15)
    example["web"]["link_minutes"] = 5
    assert parse_settings(example, ENV, tmp_path).web.link_minutes == 5


def test_git_section(tmp_path: Path, example: dict[str, Any]) -> None:
    """The mirror's settings: a relative path and a local remote resolve against the config's folder,
    URLs are kept as written; no section (or one with every key commented out), no mirror."""
    assert parse_settings(example, ENV, tmp_path).git is None
    example["git"] = None
    assert parse_settings(example, ENV, tmp_path).git is None
    example["git"] = {"path": "mirror", "remote": "../upstream.git", "redact": False, "author": "Ops <ops@example.net>"}
    assert parse_settings(example, ENV, tmp_path / "conf").git == GitSettings(
        tmp_path / "conf" / "mirror", str(tmp_path / "conf" / "../upstream.git"), False, "Ops <ops@example.net>")
    for url in ("git@gitlab.example.net:net/backups.git", "https://gitlab.example.net/net/backups.git",
                "ssh://git@10.0.0.5:2222/backups.git"):
        example["git"] = {"path": "/srv/mirror", "remote": url}
        git = parse_settings(example, ENV, tmp_path).git
        assert git is not None and git.remote == url and git.redact is True and git.path == Path("/srv/mirror")
        assert git.author == "backupbot <backupbot@localhost>"


@pytest.mark.parametrize(("section", "expected"), [
    ({"remote": "x.git"}, ["git.path: required (the mirror repository, created if missing)"]),
    ({"path": "m", "redact": "yes"}, ['git.redact: must be true or false, got "yes"']),
    ({"path": "m", "author": "ops"},
     ['git.author: "ops" is not a git identity: write it as "Name <email>", e.g. "backupbot <backupbot@example.net>"']),
    ({"path": "m", "branch": "main"}, ["git.branch: unknown key"]),
    ({"path": "", "remote": ""}, ['git.path: must be a non-empty string, got ""',
                                  'git.remote: must be a non-empty string, got ""']),
    ("mirror", ['git: must be a mapping, got "mirror"']),
])
def test_git_problems(tmp_path: Path, example: dict[str, Any], section: object, expected: list[str]) -> None:
    example["git"] = section
    assert problems(tmp_path, example) == expected


# -- inventory: NetBox or a CSV file ----------------------------------------------------------------

NETBOX = {"url": "https://netbox.example.com/", "token": "${NETBOX_TOKEN}",
          "filter": {"tag": "backup", "platform": ["routeros", "routeros-chr"]}, "site_from": "region"}
NB_TOKEN = "0123456789abcdef0123456789abcdef01234567"


def test_an_inventory_source_is_read_and_sites_may_list_no_devices(tmp_path: Path, example: dict[str, Any]) -> None:
    """With `inventory:` a site may be settings only (its channel, access) for the source's devices;
    the file may even have no sites at all."""
    example["inventory"] = {"netbox": NETBOX, "refresh": "30m", "max_retire_percent": 25}
    example["sites"]["vip"] = {"channel": "C0VIPCHAN1"}
    settings = load_settings(write(tmp_path, example), {**ENV, "NETBOX_TOKEN": NB_TOKEN})
    inventory = settings.inventory
    assert inventory is not None and inventory.refresh == timedelta(minutes=30) and inventory.max_retire_percent == 25
    source = inventory.source
    assert source.url == "https://netbox.example.com" and source.token == NB_TOKEN  # type: ignore[union-attr]
    assert source.filter == (("tag", "backup"), ("platform", "routeros"), ("platform", "routeros-chr"))  # type: ignore[union-attr]
    assert NB_TOKEN not in repr(settings)
    assert settings.sites["vip"].devices == () and settings.defaults.username == "backup"
    del example["sites"]
    assert load_settings(write(tmp_path, example), {**ENV, "NETBOX_TOKEN": NB_TOKEN}).sites == {}
    example["inventory"] = {"csv": "routers.csv"}
    (tmp_path / "routers.csv").write_text("site,name,host\n")
    csv = load_settings(write(tmp_path, example), ENV).inventory
    assert csv is not None and csv.source.path == tmp_path / "routers.csv" and csv.refresh == timedelta(hours=1)  # type: ignore[union-attr]


INVENTORY_CASES: list[tuple[object, str]] = [
    ({}, "inventory: needs exactly one source: netbox or csv"),
    ({"netbox": NETBOX, "csv": "routers.csv"}, "inventory: needs exactly one source: netbox or csv (both are given)"),
    ({"csv": "missing.csv"}, "inventory.csv: {tmp}/missing.csv: no such file"),
    ({"netbox": {**NETBOX, "token": NB_TOKEN}},
     "inventory.netbox.token: token must come from the environment, e.g. ${NETBOX_TOKEN}; credentials are not kept "
     "in files"),
    ({"netbox": {**NETBOX, "token": "${NO_SUCH_TOKEN}"}},
     "inventory.netbox.token: environment variable NO_SUCH_TOKEN is not set"),
    ({"netbox": {**NETBOX, "url": "netbox.example.com"}},
     'inventory.netbox.url: "netbox.example.com" is not an http(s) URL, e.g. "https://netbox.example.com"'),
    ({"netbox": {**NETBOX, "url": "https://netbox.example.com/api/dcim/devices/"}},
     'inventory.netbox.url: "https://netbox.example.com/api/dcim/devices/": give NetBox\'s base URL, without '
     '"/api/..." (it is added)'),
    ({"netbox": {**NETBOX, "url": "https://nb/?tag=backup"}},
     'inventory.netbox.url: "https://nb/?tag=backup": give the base URL only; filters go in "filter"'),
    ({"netbox": {**NETBOX, "site_from": "location"}},
     'inventory.netbox.site_from: must be one of site, region, tenant (whose slug names the site), got "location"'),
    ({"netbox": {**NETBOX, "filter": {"limit": 10}}},
     'inventory.netbox.filter.limit: backupbot sets "limit" itself while reading every page; leave it out'),
    ({"netbox": {**NETBOX, "filter": {"tag": {"slug": "backup"}}}},
     "inventory.netbox.filter.tag: must be a value or a list of values, got a mapping"),
    ({"netbox": {k: v for k, v in NETBOX.items() if k != "url"}}, "inventory.netbox.url: required"),
    ({"netbox": {**NETBOX, "tokn": "x"}}, 'inventory.netbox.tokn: unknown key (did you mean "token"?)'),
    ({"netbox": NETBOX, "refresh": "10s"}, 'inventory.refresh: must be at least 1 minute, got "10s"'),
    ({"netbox": NETBOX, "refresh": "hourly"},
     'inventory.refresh: must be a duration such as "1h", "30m" or "90s" (or seconds), got "hourly"'),
    ({"netbox": NETBOX, "max_retire_percent": 150}, "inventory.max_retire_percent: must be an integer 0-100, got 150"),
]


@pytest.mark.parametrize(("inventory", "expected"), INVENTORY_CASES, ids=[c[1].split(":")[0] + str(i)
                                                                          for i, c in enumerate(INVENTORY_CASES)])
def test_each_inventory_problem_is_reported_at_its_place(tmp_path: Path, example: dict[str, Any],
                                                         inventory: object, expected: str) -> None:
    (tmp_path / "routers.csv").write_text("site,name,host\n")
    example["inventory"] = inventory
    assert problems(tmp_path, example, {**ENV, "NETBOX_TOKEN": NB_TOKEN}) == [expected.replace("{tmp}", str(tmp_path))]


def test_the_source_needs_login_defaults(tmp_path: Path, example: dict[str, Any]) -> None:
    """The source's devices log in with `defaults`: without a username there, the file says so."""
    example["inventory"] = {"netbox": NETBOX}
    del example["defaults"]["username"]
    for device in example["sites"]["site-a"]["devices"]:
        device["username"] = "admin"
    assert problems(tmp_path, example, {**ENV, "NETBOX_TOKEN": NB_TOKEN}) == [
        "inventory: the devices it adds log in with `defaults`: set defaults.username and defaults.password "
        "(or defaults.key_file)"]
