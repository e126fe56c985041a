"""Slack: the Web API client, delivery, Socket Mode, access rules, what the channel is told."""
