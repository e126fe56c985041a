"""backupbot.yml: reading it strictly and checking every value."""
