"""The inventory from outside the config file: NetBox or a CSV file (`inventory:` in backupbot.yml).

    netbox    NetBox's /api/dcim/devices/ over aiohttp (paged, filtered, the token kept secret)
    csvfile   a CSV file with site, name, host[, port] columns
    merge     PURE: the file's Settings merged with a source's devices; what a new fetch would change
    refresh   read, persist the last good list, swap the merged Settings into bot.core.live

Only the places of routers come from a source; credentials stay `${VAR}` references in the file.
"""

from __future__ import annotations

from bot.core.models import CsvSource, InventorySettings
from bot.inventory.csvfile import CsvFile
from bot.inventory.netbox import NetBox
from bot.inventory.refresh import Source


def open_source(config: InventorySettings) -> Source:
    """The reader for the configured source."""
    if isinstance(config.source, CsvSource):
        return CsvFile(config.source)
    return NetBox(config.source)
