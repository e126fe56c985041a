"""A CSV file as the inventory source (bot.inventory.csvfile): the columns it accepts, and every bad
row reported with its line number, the whole file refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.errors import InventoryError
from bot.core.models import CsvSource, SourceDevice
from bot.inventory.csvfile import CsvFile, devices_from_csv


def test_a_spreadsheet_export_is_read() -> None:
    """Columns in any order and case, a byte-order mark, quoted cells, empty and # lines, optional port."""
    text = ("\ufeffName,SITE,host,port\r\n"
            "# exported from the NOC sheet\r\n"
            "core-1,riga,10.0.0.1,\r\n"
            "\r\n"
            '"ap-1",riga,"fe80::1",2222\r\n'
            "gw-1,tallinn,gw1.example.net,22\r\n")
    assert devices_from_csv(text.lstrip("\ufeff"), "routers.csv") == [
        SourceDevice("riga", "core-1", "10.0.0.1", None, "routers.csv line 3"),
        SourceDevice("riga", "ap-1", "fe80::1", 2222, "routers.csv line 5"),
        SourceDevice("tallinn", "gw-1", "gw1.example.net", 22, "routers.csv line 6"),
    ]


def test_every_bad_row_is_reported_with_its_line_number() -> None:
    text = ("site,name,host,port\n"
            "riga,core-1,10.0.0.1,22\n"
            "riga,core 2,10.0.0.2,22\n"
            "riga,core-3,,22\n"
            "riga,core-4,10.0.0.4,22a\n"
            "riga,core-5,10.0.0.5:22,\n"
            "riga,CORE-1,10.0.0.9,\n"
            "riga,core-6\n")
    with pytest.raises(InventoryError) as raised:
        devices_from_csv(text, "routers.csv")
    assert str(raised.value).split("; ") == [
        'routers.csv line 3: name: "core 2" is not a simple name (use up to 64 letters, digits, "-", "_" and ".")',
        "routers.csv line 4: host: required",
        'routers.csv line 5: port: must be an integer 1-65535, got "22a"',
        'routers.csv line 6: host: "10.0.0.5:22": put the port in "port", not in the host',
        "routers.csv line 7: riga/CORE-1 is listed twice (first on line 2)",
        "routers.csv line 8: 2 cells, the header has 4",
    ]


@pytest.mark.parametrize(("text", "error"), [
    ("site,name,address\nriga,core-1,10.0.0.1\n",
     'routers.csv line 1: the header must name the columns site, name, host and optionally port; unknown column '
     '"address"; no column "host"'),
    ("site,name,host,password\nriga,core-1,10.0.0.1,hunter2\n",
     'routers.csv line 1: the header must name the columns site, name, host and optionally port; unknown column '
     '"password"'),
    ("", "routers.csv: empty (the first row names the columns: site, name, host, port)"),
])
def test_a_bad_header_is_refused(text: str, error: str) -> None:
    """Only site, name, host and port: a credential column (or a typo) is refused, not ignored."""
    with pytest.raises(InventoryError) as raised:
        devices_from_csv(text, "routers.csv")
    assert str(raised.value) == error


async def test_reading_the_file(tmp_path: Path) -> None:
    path = tmp_path / "routers.csv"
    path.write_bytes(b"\xef\xbb\xbfsite,name,host\nriga,core-1,10.0.0.1\n")
    fetched = await CsvFile(CsvSource(path)).fetch()
    assert fetched.devices == (SourceDevice("riga", "core-1", "10.0.0.1", None, "routers.csv line 2"),)
    assert fetched.source == f"CSV {path}"
    path.write_bytes(b"site,name,host\nriga,r\xe9,10.0.0.1\n")
    with pytest.raises(InventoryError, match=r"routers.csv: not UTF-8 text \(byte 21\)"):
        await CsvFile(CsvSource(path)).fetch()
    path.unlink()
    with pytest.raises(InventoryError, match=r"routers.csv: cannot read \(No such file or directory\)"):
        await CsvFile(CsvSource(path)).fetch()
