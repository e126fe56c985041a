"""PURE. Slack's Block Kit size limits, in one place, and the small builders that respect them.

Every message bot.slack.blocks builds goes through `message()` (or `home()`), which checks every
limit below with `problems()` and raises ValueError rather than hand Slack a payload it would
reject. Long lists are packed to fit by bot.slack.blocks.pack.

Budget: besides 50 blocks and 3,000 characters per section, chat.postMessage rejects a message
whose blocks hold more than roughly 11-13k characters of text in total (msg_blocks_too_long,
undocumented; bolt-js#2509, #2867). MAX_TEXT keeps every message and Home view under 10,000.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypedDict

Block = dict[str, Any]


class Message(TypedDict):
    """Ready for chat.postMessage(**m) / respond(**m): fallback text plus blocks."""

    text: str
    blocks: list[Block]


MAX_BLOCKS = 50  # per message
MAX_HOME_BLOCKS = 100  # per Home tab view
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_BUTTON_URL = 3000
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_CHECKBOX_OPTIONS = 10
MAX_ID = 255  # block_id, action_id
MAX_TEXT = 10_000  # all text in one message's blocks (see module docstring)
MAX_FALLBACK = 3000  # the top-level "text"; Slack truncates at 40k but it is only a notification

ELLIPSIS = "…"


# --- text -------------------------------------------------------------------------------------
def escape(text: str) -> str:
    """Make user- or device-provided text literal in mrkdwn (Slack's three control characters)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """`text`, or its first limit-1 characters and a visible "…" (never a silent cut)."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def esc(text: str, limit: int | None = None) -> str:
    """Clip raw text (visibly) and then escape it, so an entity is never cut in half."""
    return escape(text if limit is None else clip(text, limit))


# --- elements and blocks -----------------------------------------------------------------------
def plain(text: str, limit: int | None = None) -> Block:
    return {"type": "plain_text", "text": clip(text, limit) if limit else text, "emoji": True}


def mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text}


def section(text: str, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(clip(text, MAX_SECTION_TEXT))}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, MAX_HEADER_TEXT)}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(clip(text, MAX_SECTION_TEXT))]}


def divider() -> Block:
    return {"type": "divider"}


def button(text: str, action_id: str, value: str, *, style: str | None = None) -> Block:
    """A button; its value must fit (values carry ids, so an overflow is a bug: ValueError)."""
    if len(value) > MAX_BUTTON_VALUE:
        raise ValueError(f"button value is {len(value)} characters (max {MAX_BUTTON_VALUE})")
    element: Block = {"type": "button", "text": plain(text, MAX_BUTTON_TEXT), "action_id": action_id,
                      "value": value}
    if style:
        element["style"] = style
    return element


def url_button(text: str, action_id: str, url: str) -> Block:
    """A button that opens `url` in the browser (Slack still sends the app a block_actions, to ack)."""
    if len(url) > MAX_BUTTON_URL:
        raise ValueError(f"button url is {len(url)} characters (max {MAX_BUTTON_URL})")
    return {"type": "button", "text": plain(text, MAX_BUTTON_TEXT), "action_id": action_id, "url": url}


def with_actions(msg: Message, *elements: Block) -> Message:
    """`msg` with one more actions block of `elements` at the end, checked like any message."""
    return message(msg["text"], [*msg["blocks"], actions(*elements)])


def option(text: str, value: str, description: str | None = None) -> Block:
    if len(value) > MAX_OPTION_VALUE:
        raise ValueError(f"option value is {len(value)} characters (max {MAX_OPTION_VALUE})")
    opt: Block = {"text": plain(text, MAX_OPTION_TEXT), "value": value}
    if description:
        opt["description"] = plain(description, MAX_OPTION_TEXT)
    return opt


def checkboxes(action_id: str, options: Sequence[Block]) -> Block:
    if not 1 <= len(options) <= MAX_CHECKBOX_OPTIONS:
        raise ValueError(f"checkboxes need 1..{MAX_CHECKBOX_OPTIONS} options, got {len(options)}")
    return {"type": "checkboxes", "action_id": action_id, "options": list(options)}


def actions(*elements: Block) -> Block:
    return {"type": "actions", "elements": list(elements)}


# --- measuring and checking --------------------------------------------------------------------
def _texts(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str):
            yield node["text"]
        for value in node.values():
            yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def text_size(blocks: Sequence[Block]) -> int:
    """Characters of text in these blocks: what MAX_TEXT limits."""
    return sum(len(t) for t in _texts(list(blocks)))


def _element_problems(where: str, el: Block) -> list[str]:
    out = []
    kind = el.get("type")
    if kind == "button":
        if len(el["text"]["text"]) > MAX_BUTTON_TEXT:
            out.append(f"{where}: button text over {MAX_BUTTON_TEXT}")
        if len(el.get("value", "")) > MAX_BUTTON_VALUE:
            out.append(f"{where}: button value over {MAX_BUTTON_VALUE}")
        if len(el.get("url", "")) > MAX_BUTTON_URL:
            out.append(f"{where}: button url over {MAX_BUTTON_URL}")
    if kind == "checkboxes" and not 1 <= len(el["options"]) <= MAX_CHECKBOX_OPTIONS:
        out.append(f"{where}: {len(el['options'])} checkbox options")
    for opt in el.get("options", []):
        description = opt.get("description", {}).get("text", "")
        if len(opt["text"]["text"]) > MAX_OPTION_TEXT or len(description) > MAX_OPTION_TEXT:
            out.append(f"{where}: option text over {MAX_OPTION_TEXT}")
        if len(opt["value"]) > MAX_OPTION_VALUE:
            out.append(f"{where}: option value over {MAX_OPTION_VALUE}")
    if len(el.get("action_id", "")) > MAX_ID:
        out.append(f"{where}: action_id over {MAX_ID}")
    return out


def problems(blocks: Sequence[Block], max_blocks: int = MAX_BLOCKS) -> list[str]:
    """Every Block Kit limit these blocks break (empty when Slack will accept them)."""
    out = []
    if len(blocks) > max_blocks:
        out.append(f"{len(blocks)} blocks (max {max_blocks})")
    if (size := text_size(blocks)) > MAX_TEXT:
        out.append(f"{size} characters of text (max {MAX_TEXT})")
    for i, block in enumerate(blocks):
        where = f"blocks[{i}] ({block['type']})"
        if len(block.get("block_id", "")) > MAX_ID:
            out.append(f"{where}: block_id over {MAX_ID}")
        if block["type"] == "section" and len(block["text"]["text"]) > MAX_SECTION_TEXT:
            out.append(f"{where}: text over {MAX_SECTION_TEXT}")
        if block["type"] == "header" and len(block["text"]["text"]) > MAX_HEADER_TEXT:
            out.append(f"{where}: header over {MAX_HEADER_TEXT}")
        if block["type"] == "context" and len(block["elements"]) > MAX_CONTEXT_ELEMENTS:
            out.append(f"{where}: over {MAX_CONTEXT_ELEMENTS} elements")
        elements = block.get("elements", []) if block["type"] == "actions" else []
        if block.get("accessory"):
            elements = [block["accessory"]]
        if len(elements) > MAX_ACTIONS_ELEMENTS:
            out.append(f"{where}: over {MAX_ACTIONS_ELEMENTS} elements")
        ids = [e["action_id"] for e in elements if "action_id" in e]
        if len(ids) != len(set(ids)):
            out.append(f"{where}: duplicate action_id")
        for el in elements:
            out.extend(_element_problems(where, el))
    return out


def message(text: str, blocks: list[Block]) -> Message:
    """A Message, after checking every limit (ValueError names each one broken)."""
    if found := problems(blocks):
        raise ValueError("message breaks Block Kit limits: " + "; ".join(found))
    return {"text": clip(text, MAX_FALLBACK), "blocks": blocks}


def home(blocks: list[Block]) -> dict[str, Any]:
    """A Home tab view for views.publish, after checking every limit."""
    if found := problems(blocks, MAX_HOME_BLOCKS):
        raise ValueError("home view breaks Block Kit limits: " + "; ".join(found))
    return {"type": "home", "blocks": blocks}
