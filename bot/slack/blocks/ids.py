"""PURE. The action_ids of backupbot's buttons and checkboxes, and the format of their values.

Values carry ids and names, never secrets. Each value holds everything a handler needs to know
which site it concerns (a version id is enough: the handler looks the version up), because a
handler MUST re-authorize: anyone who can see a message can press its buttons, and a message
may have been forwarded or shared since it was posted. Site and device names cannot contain
spaces (bot.config), so values are space-separated like the /backup command itself. The
parse_* helpers turn a value back into typed parts and raise ValueError on anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VIEW_VERSION = "view_version"  # value "VERSION_ID", e.g. "12": post the redacted config
DOWNLOAD_VERSION = "download_version"  # value "VERSION_ID": DM the raw file (download rights)
OPEN_DEVICE = "open_device"  # value "SITE DEVICE": show the device's version list (Compare)
BACKUP_SITE = "backup_site"  # value "SITE": back up every device of the site now
BACKUP_DEVICE = "backup_device"  # value "SITE DEVICE": back up one device now
PAGE_VERSIONS = "page_versions"  # value "SITE DEVICE PAGE": show that page (0 = newest) of versions
SELECT_VERSIONS = "select_versions"  # checkboxes, each option value "VERSION_ID"; ack every tick
COMPARE_SELECTED = "compare_selected"  # value "SITE DEVICE"; the ticks are in body["state"]["values"]
SHOW_DIFF = "show_diff"  # value "OLD_ID NEW_ID": diff two versions of one device
# "Open in browser" (only with web.base_url; docs/slack.md, "In the browser"):
OPEN_WEB = "open_web"  # a URL button carrying the requester's own signed link; its press is only acked
OPEN_IN_BROWSER = "open_in_browser"  # in channel messages: answers the presser with THEIR link; value
#                                      "sites", "site SITE", "compare OLD_ID NEW_ID" or "version ID"


def device_value(site: str, device: str) -> str:
    return f"{site} {device}"


def page_value(site: str, device: str, page: int) -> str:
    return f"{site} {device} {page}"


def pair_value(old_id: int, new_id: int) -> str:
    return f"{old_id} {new_id}"


def _parts(value: str, n: int) -> list[str]:
    parts = value.split()
    if len(parts) != n:
        raise ValueError(f"expected {n} space-separated parts, got {value!r}")
    return parts


def _id(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"not a version id: {text!r}")
    return int(text)


def parse_version(value: str) -> int:
    """VIEW_VERSION, DOWNLOAD_VERSION and checkbox option values -> version id."""
    (text,) = _parts(value, 1)
    return _id(text)


def parse_site(value: str) -> str:
    """BACKUP_SITE value -> site name."""
    (site,) = _parts(value, 1)
    return site


def parse_device(value: str) -> tuple[str, str]:
    """OPEN_DEVICE, BACKUP_DEVICE and COMPARE_SELECTED values -> (site, device)."""
    site, device = _parts(value, 2)
    return site, device


def parse_page(value: str) -> tuple[str, str, int]:
    """PAGE_VERSIONS value -> (site, device, page)."""
    site, device, page = _parts(value, 3)
    return site, device, _id(page)


def parse_pair(value: str) -> tuple[int, int]:
    """SHOW_DIFF value -> (old version id, new version id)."""
    old, new = _parts(value, 2)
    return _id(old), _id(new)


def web_value(kind: str, *parts: object) -> str:
    """OPEN_IN_BROWSER value: what to open ("site", "compare", "version") and its names or ids."""
    return " ".join([kind, *map(str, parts)])


def parse_web(value: str) -> tuple[str, list[str]]:
    """OPEN_IN_BROWSER value -> (kind, parts); ValueError unless it is one of the forms above."""
    kind, *parts = value.split() or [""]
    if (kind, len(parts)) in (("site", 1), ("sites", 0)):
        return kind, parts
    if (kind, len(parts)) in (("compare", 2), ("version", 1)):
        return kind, [str(_id(p)) for p in parts]
    raise ValueError(f"not an open_in_browser value: {value!r}")


def selected_versions(state_values: Mapping[str, Mapping[str, Any]]) -> list[int]:
    """Version ids ticked in SELECT_VERSIONS, from a block_actions body["state"]["values"]."""
    ids: list[int] = []
    for actions in state_values.values():
        state = actions.get(SELECT_VERSIONS)
        if state:
            ids.extend(parse_version(opt["value"]) for opt in state.get("selected_options") or [])
    return sorted(set(ids))
