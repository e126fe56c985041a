"""PURE. Block Kit for backupbot's Slack surfaces; handlers import everything from here."""

from bot.slack.blocks.views import *  # noqa: F403
from bot.slack.blocks.views import __all__ as __all__
