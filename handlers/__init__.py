"""Slack listeners, one register() per surface (filled in by the Slack interface)."""
