"""A CSV file as an inventory source: one router per row, for teams whose inventory is a spreadsheet.

The first row names the columns, in any order and any case: `site`, `name` and `host` are required,
`port` is optional (empty: the site's or defaults' port). No other column is accepted, so a typo
such as `prot` is an error rather than a port silently ignored; credentials never come from here
(they are `${VAR}` references in backupbot.yml). Empty rows and rows whose first cell starts with
`#` are skipped. UTF-8, with or without a byte-order mark (as spreadsheets save it), comma separated.

Every bad row is reported with its line number (`routers.csv line 7: port: must be an integer
1-65535, got "22a"`), all of them at once, and the whole file is refused: a row dropped on its own
would retire its router.
"""

from __future__ import annotations

import asyncio
import csv
import io

from bot.core.errors import InventoryError
from bot.core.models import CsvSource, SourceDevice
from bot.core.names import RULE, host_problem, is_simple_name
from bot.inventory.merge import Fetched

REQUIRED = ("site", "name", "host")
COLUMNS = (*REQUIRED, "port")


class CsvFile:
    """Reads the devices of one CSV file (an inventory source: `describe`, `fetch`)."""

    def __init__(self, config: CsvSource) -> None:
        self.config = config

    @property
    def describe(self) -> str:
        return self.config.describe

    async def fetch(self) -> Fetched:
        path = self.config.path
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise InventoryError(f"{path}: cannot read ({exc.strerror or exc})") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InventoryError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        return Fetched(self.describe, tuple(devices_from_csv(text, path.name)))


def _port(value: str) -> int | None:
    if not value:
        return None
    if value.isdigit() and 1 <= int(value) <= 65535:
        return int(value)
    raise ValueError(f'port: must be an integer 1-65535, got "{value}"')


def devices_from_csv(text: str, where: str) -> list[SourceDevice]:
    """The devices of a CSV text; InventoryError listing every bad line (`where line N: …`). Pure."""
    reader = csv.reader(io.StringIO(text, newline=""))
    problems: list[str] = []
    header: list[str] | None = None
    found: list[SourceDevice] = []
    first: dict[tuple[str, str], int] = {}
    try:
        for row in reader:
            line = reader.line_num
            cells = [c.strip() for c in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if header is None:
                header = [c.lower() for c in cells]
                unknown = [c for c in header if c not in COLUMNS]
                missing = [c for c in REQUIRED if c not in header]
                repeated = sorted({c for c in header if header.count(c) > 1})
                if unknown or missing or repeated:
                    problems.append(f"{where} line {line}: the header must name the columns "
                                    f"{', '.join(REQUIRED)} and optionally port"
                                    + "".join(f'; unknown column "{c}"' for c in unknown)
                                    + "".join(f'; no column "{c}"' for c in missing)
                                    + "".join(f'; column "{c}" twice' for c in repeated))
                    break
                continue
            if len(cells) != len(header):
                problems.append(f"{where} line {line}: {len(cells)} cells, the header has {len(header)}")
                continue
            values = dict(zip(header, cells))
            bad = [f"{c}: required" for c in REQUIRED if not values[c]]
            bad += [f'{c}: "{values[c]}" is not a simple name ({RULE})'
                    for c in ("site", "name") if values[c] and not is_simple_name(values[c])]
            if values["host"] and (problem := host_problem(values["host"])) is not None:
                bad.append(f"host: {problem}")
            try:
                port = _port(values.get("port", ""))
            except ValueError as exc:
                bad.append(str(exc))
            if bad:
                problems += [f"{where} line {line}: {b}" for b in bad]
                continue
            key = (values["site"], values["name"].lower())
            if key in first:
                problems.append(f"{where} line {line}: {values['site']}/{values['name']} is listed twice "
                                f"(first on line {first[key]})")
                continue
            first[key] = line
            found.append(SourceDevice(values["site"], values["name"], values["host"], port, f"{where} line {line}"))
    except csv.Error as exc:
        problems.append(f"{where} line {reader.line_num}: {exc}")
    if header is None and not problems:
        problems.append(f"{where}: empty (the first row names the columns: {', '.join(REQUIRED)}, port)")
    if problems:
        raise InventoryError("; ".join(problems))
    return found
