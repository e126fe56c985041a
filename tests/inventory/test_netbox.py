"""Reading NetBox (bot.inventory.netbox) against a local aiohttp server that plays NetBox's
/api/dcim/devices/ on 127.0.0.1: pagination, filters as query parameters, the token, garbage and
outages, and how NetBox devices become backupbot devices."""

from __future__ import annotations

import logging

import pytest

from bot.core.errors import InventoryError
from bot.core.logs import configure_logging
from bot.core.models import NetBoxSource, SourceDevice
from bot.inventory.netbox import PAGE_SIZE, NetBox, authorization, devices_from
from tests.inventory.netbox_fake import TOKEN, FakeNetBox


def source(fake: FakeNetBox, **kw: object) -> NetBoxSource:
    return NetBoxSource(**{"url": fake.url, "token": TOKEN, "filter": (("tag", "backup"),), "timeout": 5.0, **kw})


async def test_every_page_is_read_with_the_token_and_the_filters(netbox: FakeNetBox) -> None:
    """600 tagged routers over three pages of 250 (NetBox's own `next` links), 5 untagged ones left
    out by NetBox's filter; each request carries the token and the filter."""
    for i in range(600):
        netbox.add(f"r{i:03d}", f"site-{i % 3}", f"10.{i // 250}.{i % 250}.1/24")
    for i in range(5):
        netbox.add(f"other{i}", "site-0", f"10.9.0.{i}/24", tags=("monitoring",))
    fetched = await NetBox(source(netbox)).fetch()
    assert len(fetched.devices) == 600 and fetched.skipped == ()
    assert {d.name for d in fetched.devices} == {f"r{i:03d}" for i in range(600)}
    first = next(d for d in fetched.devices if d.name == "r000")
    assert first == SourceDevice("site-0", "r000", "10.0.0.1", None, "NetBox device 1")
    pages = [r for r in netbox.requests if r.path == "/api/dcim/devices/"]
    assert len(pages) == 3 == -(-600 // PAGE_SIZE)
    assert all(r.authorization == f"Token {TOKEN}" for r in pages)
    assert all(("tag", "backup") in r.query and ("limit", str(PAGE_SIZE)) in r.query for r in pages)
    assert [dict(r.query).get("offset") for r in pages] == [None, "250", "500"]


async def test_filters_are_query_parameters_and_a_list_repeats_one(netbox: FakeNetBox) -> None:
    """filter: {tag: backup, platform: [routeros, routeros-chr]} selects by both, "any of" within one."""
    netbox.add("core-1", "riga", "10.0.0.1/24")
    netbox.add("chr-1", "riga", "10.0.0.2/24", platform="routeros-chr")
    netbox.add("ios-1", "riga", "10.0.0.3/24", platform="ios")
    netbox.add("core-2", "riga", "10.0.0.4/24", tags=())
    config = source(netbox, filter=(("tag", "backup"), ("platform", "routeros"), ("platform", "routeros-chr")))
    fetched = await NetBox(config).fetch()
    assert [d.name for d in fetched.devices] == ["core-1", "chr-1"]
    assert netbox.requests[0].query[:3] == [("tag", "backup"), ("platform", "routeros"), ("platform", "routeros-chr")]


async def test_a_wrong_token_is_a_clear_error_that_never_shows_the_token(
        netbox: FakeNetBox, caplog: pytest.LogCaptureFixture) -> None:
    netbox.add("core-1", "riga", "10.0.0.1/24")
    wrong = "f" * 40
    with pytest.raises(InventoryError) as raised:
        await NetBox(source(netbox, token=wrong)).fetch()
    assert str(raised.value) == ("NetBox refused the token (HTTP 403: Invalid token.); check inventory.netbox.token "
                                 "and the token's permissions")
    assert wrong not in str(raised.value)


def test_v2_tokens_are_sent_as_bearer_and_v1_tokens_as_token() -> None:
    assert authorization(TOKEN) == f"Token {TOKEN}"
    assert authorization("nbt_abc123.secretpart") == "Bearer nbt_abc123.secretpart"


def test_the_token_is_masked_in_every_log_line(netbox: FakeNetBox) -> None:
    """Creating the reader registers the token with the scrubber: even an f-string leak is masked."""
    import io
    stream = io.StringIO()
    configure_logging(logging.INFO, stream=stream)
    secret = "nbt_Zq8v3LmK2.9fGh7Jk1Lp0Xy"
    NetBox(source(netbox, token=secret))
    logging.getLogger("test").warning(f"calling NetBox with {secret}")
    assert secret not in stream.getvalue() and "***" in stream.getvalue()


@pytest.mark.parametrize(("mode", "error"), [
    ("html", "NetBox's answer for /api/dcim/devices/ is not JSON (text/html: '<html><body>502 Bad Gateway</body></html>')"),
    ("shape", "NetBox's answer for /api/dcim/devices/ is not a NetBox list (no count, next, results)"),
    ("http500", 'NetBox answered HTTP 500 for /api/dcim/devices/'),
])
async def test_garbage_is_a_clear_error(netbox: FakeNetBox, mode: str, error: str) -> None:
    netbox.add("core-1", "riga", "10.0.0.1/24")
    netbox.mode = mode
    with pytest.raises(InventoryError) as raised:
        await NetBox(source(netbox)).fetch()
    assert str(raised.value) == error


async def test_a_silent_netbox_times_out(netbox: FakeNetBox) -> None:
    netbox.mode = "slow"
    with pytest.raises(InventoryError, match=r"^NetBox did not answer within 0.3 s$"):
        await NetBox(source(netbox, timeout=0.3)).fetch()


async def test_an_unreachable_netbox_is_a_clear_error(netbox: FakeNetBox) -> None:
    await netbox.outage()
    with pytest.raises(InventoryError, match=r"^NetBox cannot be reached \(ClientConnectorError: .*127\.0\.0\.1"):
        await NetBox(source(netbox)).fetch()


async def test_a_list_that_changes_while_it_is_paged_is_discarded(netbox: FakeNetBox) -> None:
    """A device deleted between two pages shifts the offsets, so one device is never seen: such a
    fetch is refused (that device would otherwise be retired), and read again next time."""
    for i in range(300):
        netbox.add(f"r{i:03d}", "riga", f"10.0.{i // 250}.{i % 250}/24")

    def delete_one(offset: int) -> None:
        if offset == 250:
            netbox.remove("r000")

    netbox.on_page = delete_one
    with pytest.raises(InventoryError, match=r"changed while it was read \(it counted 300 then 299, the pages held 299\)"):
        await NetBox(source(netbox)).fetch()


async def test_next_links_are_followed_on_the_configured_origin_only(netbox: FakeNetBox) -> None:
    """NetBox behind a TLS proxy writes `http://` (or another host) into `next`: the path and query
    are followed on the configured URL, so the token never goes elsewhere."""
    for i in range(300):
        netbox.add(f"r{i:03d}", "riga", f"10.0.{i // 250}.{i % 250}/24")
    netbox.next_scheme = "https"  # the fake itself speaks plain http: followed as written, this fails
    fetched = await NetBox(source(netbox)).fetch()
    assert len(fetched.devices) == 300


async def test_site_from_region_and_tenant(netbox: FakeNetBox) -> None:
    netbox.add("core-1", "riga-dc1", "10.0.0.1/24", region="baltics", tenant="acme")
    netbox.add("core-2", "oslo-dc1", "10.0.1.1/24", tenant=None)
    by_region = await NetBox(source(netbox, site_from="region")).fetch()
    assert [(d.site, d.name) for d in by_region.devices] == [("baltics", "core-1")]
    assert by_region.skipped == ('NetBox device 2 ("core-2"): has no region (site_from: region)',)
    by_tenant = await NetBox(source(netbox, site_from="tenant")).fetch()
    assert [(d.site, d.name) for d in by_tenant.devices] == [("acme", "core-1")]


def test_netbox_devices_become_devices_or_are_skipped_with_a_reason() -> None:
    """Pure mapping: the primary IP without its prefix length; the port from a custom field; a
    device without a name, an IP or a simple name is skipped, saying why; a duplicate is skipped."""
    config = NetBoxSource(url="http://127.0.0.1:1", token=TOKEN, port_field="ssh_port")

    def item(i: int, name: object, ip: str | None, **kw: object) -> dict[str, object]:
        address = {"address": ip} if ip else None
        return {"id": i, "name": name, "site": {"id": 1, "slug": "riga"}, "primary_ip": address,
                "primary_ip4": address, "custom_fields": {}, **kw}

    found, skipped = devices_from([
        item(1, "core-1", "10.0.0.1/24"),
        item(2, "ap-1", "2001:db8::7/64", custom_fields={"ssh_port": 2222}),
        item(3, None, "10.0.0.3/24"),
        item(4, "Core Router 4", "10.0.0.4/24"),
        item(5, "edge-5", None),
        item(6, "edge-6", "10.0.0.6/24", custom_fields={"ssh_port": "ssh"}),
        item(7, "CORE-1", "10.0.0.7/24"),
    ], config, {})
    assert found == [SourceDevice("riga", "core-1", "10.0.0.1", None, "NetBox device 1"),
                     SourceDevice("riga", "ap-1", "2001:db8::7", 2222, "NetBox device 2")]
    assert skipped == [
        "NetBox device 3: has no name",
        'NetBox device 4 ("Core Router 4"): the name is not a simple name (use up to 64 letters, digits, "-", "_" '
        'and "."); rename it in NetBox, or add the device to backupbot.yml under a simple name and filter it out',
        'NetBox device 5 ("edge-5"): has no primary IP address',
        "NetBox device 6 (\"edge-6\"): custom field ssh_port is 'ssh', not a port 1-65535",
        "NetBox device 7: riga/CORE-1 is listed twice (first as NetBox device 1); the first is used",
    ]
