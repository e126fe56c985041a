"""backupbot: daily MikroTik RouterOS config backups over SSH, versioned in SQLite, driven from Slack.

The packages and the one direction their imports go are in README.md, "Layout".
"""
