"""The files a deployment is made from: the Dockerfile (dependencies cached apart from the code, a
HEALTHCHECK on the admin listener's liveness as the CLI defaults it), .dockerignore, and the two
Slack app manifests (the same app; they differ only where Socket Mode must). No Docker engine runs
here, so the Dockerfile is checked as text."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from bot.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent


def dockerfile() -> list[str]:
    """Instructions, one per entry, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def serve_default(option: str) -> Any:
    return getattr(build_parser().parse_args(["serve"]), option)


def test_healthcheck_asks_liveness_on_the_admin_port_the_cli_defaults_to() -> None:
    [check] = [i for i in dockerfile() if i.startswith("HEALTHCHECK")]
    [url] = re.findall(r"http://[^'\"\s]+", check)
    host, port = serve_default("admin_host"), serve_default("admin_port")
    assert url == f"http://{host}:{port}/healthz/live"
    assert "--start-period=" in check and "--timeout=" in check


def test_dependencies_are_installed_before_any_source_is_copied() -> None:
    """So a code change reuses the dependency layer: the first RUN that installs packages follows
    a COPY of pyproject.toml alone, and reads the list from it."""
    steps = dockerfile()
    copies = [(n, i) for n, i in enumerate(steps) if i.startswith("COPY")]
    installs = [n for n, i in enumerate(steps) if i.startswith("RUN") and "pip install" in i]
    assert copies[0][1] == "COPY pyproject.toml ./"
    assert installs[0] < copies[1][0], "dependencies must be installed before the sources are copied"
    deps_step = steps[installs[0]]
    assert "tomllib" in deps_step and "['project']['dependencies']" in deps_step
    assert "--no-deps" in steps[installs[-1]] and "--no-build-isolation" in steps[installs[-1]]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["build-system"]["requires"], "the build backend is installed in the dependency layer"


def test_dockerignore_keeps_the_context_to_what_the_image_needs() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for entry in (".git", ".venv", "venv", "tests", "benchmarks", "**/__pycache__", "**/*.pyc", "**/*.db"):
        assert entry in ignored, entry
    copied = {i.split()[1] for i in dockerfile() if i.startswith("COPY")}
    assert not copied & ignored, "a file the Dockerfile copies is ignored"


# -- Slack app manifests ---------------------------------------------------------------------------
def manifest(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(data, dict)
    return data


def without_socket_mode_differences(data: dict[str, Any]) -> dict[str, Any]:
    """The manifest minus what must differ between the modes: the request URLs and the switch."""
    data = copy.deepcopy(data)
    for command in data["features"]["slash_commands"]:
        command.pop("url", None)
    data["settings"]["event_subscriptions"].pop("request_url", None)
    data["settings"]["interactivity"].pop("request_url", None)
    data["settings"].pop("socket_mode_enabled")
    return data


def keys(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [k for k, v in node.items() for k in (k, *keys(v))]
    return [k for item in node for k in keys(item)] if isinstance(node, list) else []


def test_both_manifests_are_the_same_app_but_for_socket_mode() -> None:
    http, socket = manifest("manifest.yml"), manifest("manifest.socket-mode.yml")
    assert without_socket_mode_differences(http) == without_socket_mode_differences(socket)
    assert http["settings"]["socket_mode_enabled"] is False and socket["settings"]["socket_mode_enabled"] is True
    urls = [c["url"] for c in http["features"]["slash_commands"]] + [
        http["settings"]["event_subscriptions"]["request_url"], http["settings"]["interactivity"]["request_url"]]
    assert len(urls) == 3 and set(urls) == {"https://backupbot.example.com/slack/events"}
    assert not [key for key in keys(socket) if "url" in key], "Socket Mode needs no URL"
    assert http["oauth_config"]["scopes"]["bot"] == socket["oauth_config"]["scopes"]["bot"]
    assert [c["command"] for c in socket["features"]["slash_commands"]] == ["/backup"]
