"""`backupbot serve`: the aiohttp application, health, metrics."""
