"""`backupbot demo --web` as a real process: the demo as usual, then its pages on 127.0.0.1 with a
ready-signed link to the comparison of the changed router, until Ctrl-C (SIGINT to the whole
process group, as a terminal sends it): then a clean exit 0 and no traceback from any process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp

from tests.integration.helpers import read_until

ENV = {"PATH": "/usr/bin:/bin"}


async def test_demo_web_serves_its_comparison_until_ctrl_c(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "demo", "--web", "--dir", str(tmp_path / "demo"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=ENV, start_new_session=True)
    try:
        assert proc.stdout is not None
        seen = (await read_until(proc.stdout, b"/ui/open?t=", timeout=120)).decode()
        assert "== Second backup" in seen and "Try:" in seen  # the plain demo first, as it is
        link = re.search(r"(http://127\.0\.0\.1:\d+)/ui/open\?t=\S+", seen)
        assert link is not None
        pair = re.search(r"comparison of core-1 \(#(\d+) → #(\d+)\)", seen)
        assert pair is not None
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(link[0]) as resp:
                page = await resp.text()
                assert resp.status == 200 and resp.url.path == "/ui/compare"
            assert f"hq/core-1 #{pair[1]} (" in page and f"→ #{pair[2]} (" in page and "<mark>" in page
            async with session.get(f"{link[1]}/ui/device/hq/core-1") as resp:
                assert resp.status == 200 and "Download" in await resp.text()  # the demo's user is its admin
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert b"Stopped serving the pages." in out
    assert b"Traceback" not in out + err and b"KeyboardInterrupt" not in out + err
