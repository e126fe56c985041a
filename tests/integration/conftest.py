"""Fixtures for end-to-end tests: `slack`, a started fake of Slack's Web API on 127.0.0.1 (helpers.py
has the rest: the bot's real server, signed requests, simulated routers)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.slack_fake import FakeSlack


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    """A started fake of Slack's Web API on 127.0.0.1 that records every call."""
    fake = FakeSlack()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
