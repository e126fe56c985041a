"""Requests whose words include "payload" are dispatched by what they are.

slack-bolt's own body parser takes any form body containing the text `payload` for an interactive
request, finds no `payload` field and dispatches nothing (404: "dispatch_failed" in Slack). bot.serve.web
parses Slack's bodies itself (docs/slack.md, "Requests that mention payload"). Here: a site named
`payload-lab` with a device `payload-gw`, a search for `payload`, a button whose value and label
say payload, and an event; over signed HTTP and over Socket Mode.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.slack import blocks
from bot.core.models import Settings
from bot.serve.server import BACKEND
from bot.ssh.simulator import SimDevice, Simulator
from bot.serve.web import slack_body
from tests.integration.helpers import (
    ADMIN,
    ALICE,
    GENERAL,
    SlackBot,
    add_routers,
    answer,
    blocks_text,
    buttons,
    config_for,
    run_bot,
    sign,
)
from tests.integration.slack_fake import FakeSlack

SITE, DEVICE = "payload-lab", "payload-gw"
FORM = "application/x-www-form-urlencoded"


@dataclass
class World:
    bot: SlackBot
    slack: FakeSlack
    settings: Settings


async def _world(tmp_path: Path, simulator: Simulator, slack: FakeSlack, *, socket_mode: bool) -> AsyncIterator[World]:
    (gw,) = await add_routers(simulator, SimDevice(DEVICE))
    settings = config_for(tmp_path, {SITE: [gw]})
    async with run_bot(settings, slack, socket_mode=socket_mode) as bot:
        await bot.app[BACKEND].service.run(settings.devices(), "test")
        yield World(bot, slack, settings)


@pytest.fixture
async def http(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> AsyncIterator[World]:
    async for world in _world(tmp_path, simulator, slack, socket_mode=False):
        yield world


@pytest.fixture
async def socket(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> AsyncIterator[World]:
    async for world in _world(tmp_path, simulator, slack, socket_mode=True):
        yield world


# -- the parser itself (pure) ----------------------------------------------------------------------
def test_a_form_is_its_fields_whatever_they_say() -> None:
    body = urllib.parse.urlencode({"command": "/backup", "text": "payload-lab payload={}", "user_id": ALICE})
    assert slack_body(body, FORM) == {"command": "/backup", "text": "payload-lab payload={}", "user_id": ALICE}


def test_a_payload_field_is_an_interactive_request() -> None:
    inner = {"type": "block_actions", "actions": [{"value": "payload-lab"}]}
    body = "payload=" + urllib.parse.quote(json.dumps(inner))
    assert slack_body(body, FORM) == inner


def test_json_is_an_event_and_an_empty_body_is_empty() -> None:
    event = {"type": "event_callback", "event": {"type": "app_home_opened", "text": "payload"}}
    assert slack_body(json.dumps(event), "application/json") == event
    assert slack_body("", FORM) == {} and slack_body("", "application/json") == {}


@pytest.mark.parametrize(("body", "content_type"), [
    ("payload=%7Bnot-json", FORM), ("payload=%5B1%2C2%5D", FORM), ("{nope", "application/json"), ("[1]", "application/json"),
])
def test_malformed_bodies_are_refused_by_the_parser(body: str, content_type: str) -> None:
    with pytest.raises(ValueError, match=r"payload|JSON"):
        slack_body(body, content_type)


# -- over signed HTTP ------------------------------------------------------------------------------
async def test_a_site_named_payload_lab_is_shown(http: World) -> None:
    msg = await answer(http.slack, await http.bot.command(SITE))
    assert DEVICE in blocks_text(msg)
    assert buttons(msg)[0] == (blocks.BACKUP_SITE, SITE)


async def test_a_device_named_payload_gw_lists_its_versions(http: World) -> None:
    msg = await answer(http.slack, await http.bot.command(f"{SITE} {DEVICE}"))
    assert (blocks.COMPARE_SELECTED, f"{SITE} {DEVICE}") in buttons(msg)


async def test_search_for_payload_finds_the_device(http: World) -> None:
    msg = await answer(http.slack, await http.bot.command("search payload"))
    assert DEVICE in blocks_text(msg)


async def test_an_unknown_name_with_payload_in_it_gets_the_closest_match(http: World) -> None:
    reply = await http.bot.command("payload-lb")
    assert reply.status == 200 and reply.json["text"] == f'Unknown site "payload-lb". Did you mean: {SITE}?'


async def test_a_button_whose_value_and_label_say_payload_is_dispatched(http: World) -> None:
    reply = await http.bot.action(blocks.OPEN_DEVICE, f"{SITE} {DEVICE}",
                                  action={"text": {"type": "plain_text", "text": "payload"}})
    assert reply.status == 200
    msg = await answer(http.slack, reply)
    assert (blocks.COMPARE_SELECTED, f"{SITE} {DEVICE}") in buttons(msg)


async def test_an_event_mentioning_payload_is_dispatched(http: World) -> None:
    reply = await http.bot.event({"type": "app_home_opened", "user": ADMIN, "channel": "D0ADMIN001", "tab": "home",
                                  "view": {"callback_id": "payload", "type": "home"}})
    assert reply.status == 200
    (call,) = await http.slack.wait_for("views.publish")
    assert SITE in json.dumps(call.params["view"])


async def test_unsigned_requests_mentioning_payload_are_still_401(http: World) -> None:
    """The guard parses; Bolt still verifies the signature over the raw body first."""
    command = http.bot.command_body(f"{SITE} now")
    action = "payload=" + urllib.parse.quote(json.dumps(http.bot.action_payload(blocks.BACKUP_SITE, SITE)))
    for body in (command, action):
        assert (await http.bot.post(body, sign(body, secret="not-the-secret"))).status == 401
        assert (await http.bot.post(body, {})).status == 401
        signed = sign(body)  # the signature of another body: what a tampering proxy would leave
        assert (await http.bot.post(body.replace("payload-lab", "payload-lax"), signed)).status == 401
    assert http.slack.responses() == []


async def test_a_malformed_signed_body_gets_400_not_a_traceback(http: World) -> None:
    for body in ("payload=%7Bnot-json", "payload=%5B%5D"):
        reply = await http.bot.post(body)
        assert reply.status == 400 and reply.text.startswith("malformed Slack request"), reply.text


# -- over Socket Mode ------------------------------------------------------------------------------
def _command(slack: FakeSlack, text: str, key: str) -> dict[str, str]:
    return {"token": "legacy", "team_id": "T0FAKETEAM", "channel_id": GENERAL, "user_id": ALICE,
            "user_name": "alice", "command": "/backup", "text": text, "api_app_id": "A0FAKE",
            "response_url": slack.response_url(key), "trigger_id": "1.trigger"}


async def test_socket_mode_is_not_affected(socket: World) -> None:
    """Socket Mode hands Bolt the envelope's payload as a dict, so Bolt's body parser never runs:
    the same names, search and button work there too (proved here rather than assumed)."""
    slack = socket.slack
    for text, key, expected in ((SITE, "site", DEVICE), (f"{SITE} {DEVICE}", "dev", "compare_selected"),
                                ("search payload", "search", DEVICE)):
        await slack.wait_ack(await slack.send_envelope("slash_commands", _command(slack, text, key)))
        (call,) = await slack.wait_for("response_url", key=key)
        assert expected in json.dumps(call.params), text
    press = socket.bot.action_payload(blocks.OPEN_DEVICE, f"{SITE} {DEVICE}", key="press",
                                      action={"text": {"type": "plain_text", "text": "payload"}})
    await slack.wait_ack(await slack.send_envelope("interactive", press))
    (call,) = await slack.wait_for("response_url", key="press")
    assert (blocks.COMPARE_SELECTED, f"{SITE} {DEVICE}") in buttons(call.params)
