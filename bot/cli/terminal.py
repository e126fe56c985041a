"""PURE. What the CLI prints: tables, the progress line, coloured diffs and --json documents,
and whether to colour them (`colour_wanted`, the one place that decides)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO, overload

from bot.core.text import changes, when
from bot.core.models import (
    Attempt, DeviceResult, DeviceStatus, RunSummary, SourceDevice, Status, StoredInventory, Version,
)

if TYPE_CHECKING:  # keeps this module pure: no import of the I/O layers at run time
    from bot.backup.catalog import SiteOverview
    from bot.backup.grepresult import GrepResult, HistoryResult
    from bot.inventory.merge import Plan
    from bot.routeros.grep import Hit, Query, Span

RED, GREEN, CYAN, BOLD, RESET = "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[1m", "\x1b[0m"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [list(map(str, r)) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]

    def fmt(line: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, cells)])


def progress(done: int, total: int, failed: int, width: int = 30, unit: str = "devices", failures: str = "failed"
             ) -> str:
    filled = width * done // total if total else width
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {unit}, {failed} {failures}"


def result_row(r: DeviceResult) -> list[str]:
    detail = r.reason or ""
    if r.status is Status.CHANGED:
        detail = changes(r.added, r.removed) + (f"  ({r.note})" if r.note else "")
    return [r.device.site, r.device.name, r.status.value, str(r.version.id) if r.version else "-", detail]


def summary(s: RunSummary) -> str:
    totals = ", ".join(f"{s.count(st)} {st.value}" for st in Status)
    seconds = (s.finished_at - s.started_at).total_seconds()
    body = table(["SITE", "DEVICE", "STATUS", "VERSION", "DETAIL"], map(result_row, s.results))
    return f"{body}\n\n{len(s.results)} devices in {seconds:.1f} s: {totals}"


def sites(overviews: Sequence[SiteOverview]) -> str:
    return table(["SITE", "DEVICES", "LAST RUN", "OK", "CHANGED", "FAILED", "NEVER", "RETIRED"],
                 ([o.site.name, len(o.site.devices), when(o.last_run), o.ok, o.changed, o.failed, o.never, o.retired]
                  for o in overviews))


def devices(statuses: Sequence[DeviceStatus]) -> str:
    def row(s: DeviceStatus) -> list[str]:
        v, a = s.latest, s.last_attempt
        last = "never tried" if a is None else (f"FAILED: {a.reason}" if a.status is Status.FAILED else "ok")
        if s.device.retired_at is not None:  # gone from the inventory source: kept to browse, never tried again
            last = f"RETIRED {s.device.retired_at:%Y-%m-%d} (not backed up; history kept)"
        return [s.device.name, s.device.host, str(v.id) if v else "-", when(v.first_seen if v else None),
                when(v.last_verified if v else None), (v.meta.ros_version or "?") if v else "-", last]
    return table(["DEVICE", "HOST", "LATEST", "TAKEN", "VERIFIED", "ROUTEROS", "LAST ATTEMPT"], map(row, statuses))


def versions(items: Sequence[Version], origins: Mapping[int, str] | None = None) -> str:
    """`origins`: the trigger of the run that recorded each version (schedule, slack, cli, import…)."""
    found = origins or {}
    return table(["ID", "FIRST SEEN", "LAST VERIFIED", "ROUTEROS", "SIZE", "HASH", "FROM"],
                 ([v.id, when(v.first_seen), when(v.last_verified), v.meta.ros_version or "?", v.size, v.hash[:12],
                   found.get(v.id, "?")] for v in items))


def colour_wanted(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Colour only on a terminal; never with NO_COLOR set to anything non-empty (no-color.org) or
    TERM=dumb. `env` is the environment main() was given, so callers and tests control it."""
    return stream.isatty() and not env.get("NO_COLOR") and env.get("TERM") != "dumb"


def colour_diff(text: str) -> str:
    def paint(line: str) -> str:
        if line.startswith(("+++", "---")):
            return BOLD + line + RESET
        colour = {"+": GREEN, "-": RED, "@": CYAN}.get(line[:1])
        return colour + line + RESET if colour else line
    return "\n".join(paint(line) for line in text.splitlines()) + ("\n" if text else "")


# --- --json documents ------------------------------------------------------------------------
def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


@overload
def version_json(v: Version) -> dict[str, Any]: ...
@overload
def version_json(v: None) -> None: ...
def version_json(v: Version | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"id": v.id, "site": v.site, "device": v.device, "first_seen": iso(v.first_seen),
            "last_verified": iso(v.last_verified), "routeros": v.meta.ros_version, "model": v.meta.model,
            "serial": v.meta.serial, "size": v.size, "hash": v.hash}


def attempt_json(a: Attempt | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {"run_id": a.run_id, "at": iso(a.at), "status": a.status.value, "version_id": a.version_id,
            "error_kind": a.error_kind, "reason": a.reason}


def summary_json(s: RunSummary) -> dict[str, Any]:
    return {
        "run_id": s.run_id, "trigger": s.trigger, "started_at": iso(s.started_at), "finished_at": iso(s.finished_at),
        "totals": {st.value: s.count(st) for st in Status},
        "devices": [{"site": r.device.site, "device": r.device.name, "status": r.status.value,
                     "version": version_json(r.version), "previous_id": r.previous.id if r.previous else None,
                     "added": r.added, "removed": r.removed, "error_kind": r.error_kind, "reason": r.reason,
                     "note": r.note, "seconds": round(r.duration, 3)} for r in s.results],
    }


def sites_json(overviews: Sequence[SiteOverview]) -> list[dict[str, Any]]:
    return [{"site": o.site.name, "devices": len(o.site.devices), "last_run": iso(o.last_run), "ok": o.ok,
             "changed": o.changed, "failed": o.failed, "never": o.never, "retired": o.retired} for o in overviews]


def devices_json(statuses: Sequence[DeviceStatus]) -> list[dict[str, Any]]:
    return [{"site": s.device.site, "device": s.device.name, "host": s.device.host,
             "latest": version_json(s.latest), "last_attempt": attempt_json(s.last_attempt),
             "last_success_at": iso(s.last_success_at), "retired_at": iso(s.device.retired_at)} for s in statuses]


def hit_json(h: Hit) -> dict[str, Any]:
    return {"line": h.number, "section": h.section, "text": h.line, "before": list(h.before), "after": list(h.after)}


def grep_json(r: GrepResult) -> dict[str, Any]:
    return {"query": query_json(r.query), "searched": r.searched, "without_backup": r.unbacked,
            "devices_matched": len(r.devices), "lines": r.lines, "listed": r.listed, "complete": r.complete,
            "devices": [{"site": d.version.site, "device": d.version.device, "version": version_json(d.version),
                         "count": d.count, "hits": [hit_json(h) for h in d.hits]} for d in r.devices]}


def history_json(r: HistoryResult) -> dict[str, Any]:
    def span(s: Span) -> dict[str, Any]:
        return {"since": version_json(s.since), "until": version_json(s.until)}

    return {"query": query_json(r.query), "searched": r.searched, "without_backup": r.unbacked,
            "devices": [{"site": d.site, "device": d.device, "versions": d.versions,
                         "first": version_json(d.first), "last": version_json(d.last),
                         "lines": [{"text": x.line, "section": x.section, "line": x.number,
                                    "spans": [span(s) for s in x.spans]} for x in d.lines]}
                        for d in r.devices]}


def query_json(q: Query) -> dict[str, Any]:
    return {"pattern": q.pattern, "regex": q.regex, "ignore_case": q.ignore_case}


# --- `backupbot inventory` -----------------------------------------------------------------------
APPLY = "backupbot inventory --apply"


def _where(d: SourceDevice) -> str:
    return d.host if d.port is None else f"{d.host} port {d.port}"


def _current(stored: StoredInventory) -> str:
    if stored.fetched_at is None:
        return "the current inventory (no list from the source yet: the config file's devices only)"
    return (f"the current inventory (the last good list, read {when(stored.fetched_at)} UTC from "
            f"{stored.source}, {len(stored.listed)} devices)")


def inventory(plan: Plan, stored: StoredInventory, *, applied: bool) -> str:
    """What the source gave, and what it changes against the last good list (`backupbot inventory`)."""
    f = plan.fetched
    out = [f"{f.source}: {len(f.devices)} devices, read {when(f.at)} UTC", ""]
    out.append(table(["SITE", "DEVICE", "HOST", "PORT", "LISTED AS"],
                     ([d.site, d.name, d.host, d.port or "-", d.origin] for d in f.devices)))
    if f.skipped:
        out += ["", f"Skipped ({len(f.skipped)}):", *(f"  {line}" for line in f.skipped)]
    verb = "retired" if applied else "would retire"
    rows: list[list[str]] = []
    rows += [["added", d.site, d.name, _where(d) + (" (back: no longer retired)" if d in plan.returned else "")]
             for d in plan.added]
    rows += [[verb, d.site, d.name, f"no longer listed (was {_where(d)})"] for d in plan.retired]
    rows += [["kept", d.site, d.name, "no longer listed, but the config file has it"] for d in plan.kept_by_file]
    rows += [["changed", c.site, c.name, f"{c.field} {c.old} → {c.new}"] for c in plan.changed]
    rows += [["file wins", o.site, o.name, f"{o.field} {o.file} from the config file, not {o.source} from the source"]
             for o in plan.overrides]
    out += ["", f"Against {_current(stored)}:"]
    out.append(table(["CHANGE", "SITE", "DEVICE", "DETAIL"], rows) if rows else "no differences")
    if applied:
        out += ["", "Saved: this is the inventory now (a running `serve` takes it at its next refresh)."]
    elif plan.held_back is not None:
        out += ["", f"Held back: {plan.held_back}.",
                f"`serve` keeps the devices it has until this list is accepted with `{APPLY}`."]
    else:
        out += ["", f"Nothing was changed (`serve` applies this at its next refresh; `{APPLY}` saves it now)."]
    return "\n".join(out)


def _device_json(d: SourceDevice) -> dict[str, Any]:
    return {"site": d.site, "device": d.name, "host": d.host, "port": d.port, "listed_as": d.origin}


def _stored_json(stored: StoredInventory) -> dict[str, Any] | None:
    if stored.fetched_at is None:
        return None
    return {"source": stored.source, "read_at": iso(stored.fetched_at), "devices": len(stored.listed)}


def inventory_json(plan: Plan, stored: StoredInventory, *, applied: bool) -> dict[str, Any]:
    f = plan.fetched
    return {
        "source": f.source, "read_at": iso(f.at), "devices": [_device_json(d) for d in f.devices],
        "skipped": list(f.skipped), "current": _stored_json(stored),
        "added": [{**_device_json(d), "back": d in plan.returned} for d in plan.added],
        "retire": [_device_json(d) for d in plan.retired], "kept_by_file": [_device_json(d) for d in plan.kept_by_file],
        "changed": [{"site": c.site, "device": c.name, "field": c.field, "old": c.old, "new": c.new}
                    for c in plan.changed],
        "file_wins": [{"site": o.site, "device": o.name, "field": o.field, "file": o.file, "source": o.source}
                      for o in plan.overrides],
        "held_back": plan.held_back, "applied": applied,
    }


def inventory_failed(source: str, error: str, stored: StoredInventory) -> str:
    kept = ("the last good list, read " + f"{when(stored.fetched_at)} UTC ({len(stored.listed)} devices), stays in use"
            if stored.fetched_at is not None else "there is no list from it yet: the config file's devices are used")
    return f"{source}: cannot be read: {error}\nNothing was changed: {kept}."


def inventory_failed_json(source: str, error: str, stored: StoredInventory) -> dict[str, Any]:
    return {"source": source, "error": error, "current": _stored_json(stored), "applied": False}
