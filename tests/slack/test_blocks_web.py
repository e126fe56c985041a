"""Open in browser in Block Kit (pure): URL buttons with the requester's own link on answers only
they see; an action button on channel messages; every message still within Slack's limits."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from slack_sdk.models.blocks import Block as SdkBlock

from bot.core.kinds import Trigger
from bot.core.models import Device, DeviceResult, DeviceStatus, RunSummary, Site, Status, Version
from bot.slack import blocks
from bot.slack.blocks.kit import problems

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
URL = "https://backupbot.example.com/ui/open?t=bbw1.payload.signature"


def dev(i: int, site: str = "hq") -> Device:
    return Device(site, f"dev-{i:04d}", f"10.0.{i // 250}.{i % 250}", username="backup")


def ver(vid: int, d: Device) -> Version:
    return Version(vid, d.site, d.name, NOW, NOW, 2048, "0" * 64)


def elements(message: dict[str, Any]) -> list[dict[str, Any]]:
    assert problems(message["blocks"]) == []
    for block in message["blocks"]:
        assert SdkBlock.parse(block).to_dict() == block  # slack_sdk's own validators
    found = []
    for block in message["blocks"]:
        found += block.get("elements", []) if block["type"] == "actions" else []
        found += [block["accessory"]] if "accessory" in block else []
    return found


def url_buttons(message: dict[str, Any]) -> list[str]:
    return [e["url"] for e in elements(message) if e.get("action_id") == blocks.OPEN_WEB]


def test_answers_only_the_requester_sees_carry_their_link() -> None:
    site = Site("hq", tuple(dev(i) for i in range(3)))
    statuses = [DeviceStatus(d, ver(i + 1, d), None, NOW) for i, d in enumerate(site.devices)]
    assert url_buttons(blocks.site_devices(site, statuses, NOW, web_url=URL)) == [URL]
    assert url_buttons(blocks.site_devices(site, statuses, NOW)) == []
    d = site.devices[0]
    assert url_buttons(blocks.device_versions(d, [ver(1, d)], total=1, page=0, now=NOW, web_url=URL)) == [URL]
    assert url_buttons(blocks.sites_overview([], NOW)) == []
    note = blocks.web_link(URL, "hq/dev-0000 #1")
    assert url_buttons(note) == [URL] and "expires" in note["text"]


def test_a_site_too_big_for_one_message_keeps_its_link_within_the_limits() -> None:
    site = Site("hq", tuple(dev(i) for i in range(1500)))
    statuses = [DeviceStatus(d, ver(i + 1, d), None, NOW - timedelta(days=3 if i % 3 else 0))
                for i, d in enumerate(site.devices)]
    message = blocks.site_devices(site, statuses, NOW, lambda s: s.last_success_at < NOW - timedelta(days=1),
                                  web_url=URL)
    assert url_buttons(message) == [URL] and len(message["blocks"]) <= 50


def test_channel_messages_carry_an_action_button_never_a_link() -> None:
    d, e = dev(1), dev(2, site="branch")
    changed = DeviceResult(d, Status.CHANGED, ver(7, d), ver(3, d), added=2, removed=1)
    digest = blocks.run_summary(RunSummary(1, Trigger.SCHEDULE, NOW, NOW, (changed,)), now=NOW, web=True)
    assert url_buttons(digest) == []
    assert [x["value"] for x in elements(digest) if x["action_id"] == blocks.OPEN_IN_BROWSER] == ["site hq"]
    both = RunSummary(1, Trigger.SCHEDULE, NOW, NOW, (changed, DeviceResult(e, Status.UNCHANGED, ver(9, e))))
    assert [x["value"] for x in elements(blocks.run_summary(both, now=NOW, web=True))
            if x["action_id"] == blocks.OPEN_IN_BROWSER] == ["sites"]
    assert not [x for x in elements(blocks.run_summary(both, now=NOW)) if x["action_id"] == blocks.OPEN_IN_BROWSER]
    notice = blocks.change_notice(changed, Trigger.SLACK, 5, web=True)
    assert [x["value"] for x in elements(notice) if x["action_id"] == blocks.OPEN_IN_BROWSER] == ["compare 3 7"]
    first = blocks.change_notice(DeviceResult(d, Status.CHANGED, ver(7, d)), Trigger.SLACK, 5, web=True)
    assert [x["value"] for x in elements(first) if x["action_id"] == blocks.OPEN_IN_BROWSER] == ["version 7"]


@pytest.mark.parametrize(("value", "parsed"), [("sites", ("sites", [])), ("site hq", ("site", ["hq"])),
                                               ("compare 3 7", ("compare", ["3", "7"])), ("version 7", ("version", ["7"]))])
def test_web_values_round_trip(value: str, parsed: tuple[str, list[str]]) -> None:
    assert blocks.parse_web(value) == parsed
    assert blocks.web_value(parsed[0], *parsed[1]) == value


@pytest.mark.parametrize("value", ["", "site", "site a b", "compare 3", "compare x y", "version", "home", "sites x"])
def test_bad_web_values_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        blocks.parse_web(value)


def test_a_url_too_long_for_slack_is_refused() -> None:
    with pytest.raises(ValueError, match="url"):
        blocks.open_in_browser("https://x/" + "a" * 3000)
