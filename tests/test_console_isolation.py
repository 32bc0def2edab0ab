"""Region isolation swept over the whole console: every GET page any feature registers, and
every export in both formats, fetched as a 华北 manager must never show a 华东 customer's
name or phone or a 华东 ticket's number; a 华东 record's own page answers 404. The sweep
reads the registered pages, so a page added later is swept too — and a page with path
parameters this file does not know how to fill fails the sweep until FILLERS says how.
"""

from __future__ import annotations

import html
import importlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from openpyxl import load_workbook

from bot.app.features import FEATURES
from bot.web.exports import XLSX_TYPE
from bot.web.pages import PageSpec
from tests.console import logged_in, url
from tests.console_records import Seeded, seed_two_regions
from tests.harness import Harness

PARAM = re.compile(r"\{(\w+)(?::[^{}]*)?\}")
FORMATS = ("csv", "xlsx")



@dataclass(frozen=True)
class Filler:
    """How to fill a path's parameters: `fill` gives one or more fillings for a region's
    records. A `record` page shows that one record: 200 for the manager's own region's,
    404 for the other's."""

    fill: Callable[[Seeded], list[dict[str, str]]]
    record: bool = False


def _figures(board: str) -> list[dict[str, str]]:
    """Every figure a board module exports (its `FIGURES`, keyed by the URL's name)."""
    module = importlib.import_module(f"handlers.boards.{board}")
    return [{"figure": figure} for figure in module.FIGURES]


# How to fill each parameterised path ({format} is filled with every export format on any
# path). A page whose path has another parameter must be added here, or the sweep fails:
# nobody can add a page that is not swept.
FILLERS: dict[str, Filler] = {
    "/customers/{id}": Filler(lambda s: [{"id": str(s.customer_id)}], record=True),
    "/tickets/{number}": Filler(lambda s: [{"number": s.number}], record=True),
    r"/tickets/{number}/photos/{photo:\d+}": Filler(
        lambda s: [{"number": s.number, "photo": str(s.photo_id)}], record=True),
    r"/orders/{id:\d+}": Filler(lambda s: [{"id": str(s.order_id)}], record=True),
    r"/orders/import/{id:\d+}/errors.csv": Filler(lambda s: [{"id": "1"}]),  # admins only
    # the seeded customer's external userid is wm-<its ticket number>
    "/sidebar/customers/{external_userid}": Filler(
        lambda s: [{"external_userid": f"wm-{s.number}"}], record=True),
    "/boards/region/export/{figure:[a-z]+}.{format:[a-z]+}": Filler(
        lambda s: _figures("region")),
    "/boards/revenue/export/{figure}.{format:csv|xlsx}": Filler(lambda s: _figures("revenue")),
    # the seeded tickets are 维修 tickets at station 1 (上门); every station is swept
    r"/boards/stages/{type}/{index:\d+}": Filler(
        lambda s: [{"type": "维修", "index": str(i)} for i in range(4)]),
    r"/boards/stages/{type}/{index:\d+}/export.{format}": Filler(
        lambda s: [{"type": "维修", "index": str(i)} for i in range(4)]),
}
# Plausible query strings every parameterless page is also fetched with: a filter asking
# for the other region outright must not open it.
PROBES = ("", "?region=华东", "?region=华东&state=open&page=1")


def console_specs() -> list[PageSpec[Any]]:
    return [spec for f in FEATURES if f.console is not None for spec in f.console.specs]


def record_params(spec: PageSpec[Any]) -> list[str]:
    return [name for name in PARAM.findall(spec.path) if name != "format"]


def filler_of(spec: PageSpec[Any]) -> Filler | None:
    if not record_params(spec):
        return None
    filler = FILLERS.get(spec.path)
    if filler is None:
        pytest.fail(f"the isolation sweep does not know how to fill {spec.path} "
                    f"({spec.name}): add it to FILLERS in {__name__}")
    return filler


def paths_for(spec: PageSpec[Any], seeded: Seeded) -> list[str]:
    """`spec`'s path with its parameters filled for `seeded` (each filling, each export
    format)."""
    filler = filler_of(spec)
    fillings = filler.fill(seeded) if filler else [{}]
    formats = FORMATS if "format" in PARAM.findall(spec.path) else (None,)
    paths = []
    for values in fillings:
        for fmt in formats:
            filled = {**values, **({"format": fmt} if fmt else {})}
            missing = set(PARAM.findall(spec.path)) - set(filled)
            assert not missing, f"FILLERS[{spec.path!r}] leaves {missing} unfilled"
            paths.append(PARAM.sub(lambda m, v=filled: v[m.group(1)],  # type: ignore[misc]
                                   spec.path))
    return paths


async def readable(response: aiohttp.ClientResponse) -> str:
    """What a person would read in the response: HTML or CSV text, JSON with its Chinese
    unescaped, every cell of an XLSX workbook."""
    body = await response.read()
    kind = response.headers.get("Content-Type", "")
    if kind.startswith(XLSX_TYPE):
        book = load_workbook(io.BytesIO(body), read_only=True)
        return "\n".join(str(cell) for sheet in book.worksheets
                         for row in sheet.iter_rows(values_only=True)
                         for cell in row if cell is not None)
    text = body.decode("utf-8", errors="replace")
    if "json" in kind:
        return json.dumps(json.loads(text), ensure_ascii=False)
    return html.unescape(text)


async def sweep(h: Harness, userid: str, north: Seeded, east: Seeded
                ) -> list[tuple[str, int, str]]:
    """(path, status, text) for every GET page and export, as `userid`; record pages are
    fetched for both regions' records, the others with each probe."""
    seen = []
    async with logged_in(h, userid) as session:
        targets: list[str] = ["/"]
        for spec in console_specs():
            if spec.method != "GET":
                continue
            filler = filler_of(spec)
            if filler is None:
                targets += [p + q for p in paths_for(spec, north) for q in PROBES]
            else:
                targets += [p for s in ((north, east) if filler.record else (north,))
                            for p in paths_for(spec, s)]
        for path in dict.fromkeys(targets):
            response = await session.get(url(h, path))
            text = await readable(response)
            assert response.url.path != "/login", f"{path}: the session was lost"
            assert response.status < 500, f"{path} as {userid}: {response.status} {text[:300]}"
            seen.append((path, response.status, text))
    return seen


def test_every_parameterised_page_is_known_to_the_sweep() -> None:
    unknown = [spec.path for spec in console_specs()
               if spec.method == "GET" and record_params(spec) and spec.path not in FILLERS]
    assert not unknown, (f"pages the isolation sweep cannot fill: {unknown}; add them to "
                         f"FILLERS in {__name__}")


async def test_a_region_manager_sees_no_other_regions_records_anywhere(harness: Harness
                                                                       ) -> None:
    h = harness
    north, east = await seed_two_regions(h)
    specs = {spec.path for spec in console_specs()}
    assert {"/customers", "/tickets", "/customers/export.{format}",
            "/tickets/export.{format}"} <= specs  # the sweep sees the registered pages
    swept = await sweep(h, "zhaoliu", north, east)
    for path, _, text in swept:
        leaked = [secret for secret in east.secrets if secret in text]
        assert not leaked, f"{path} shows 华东's {leaked} to the 华北 manager"
    statuses = {path: status for path, status, _ in swept}
    for spec in console_specs():
        filler = filler_of(spec) if spec.method == "GET" else None
        if filler is not None and filler.record:
            for ours in paths_for(spec, north):
                assert statuses[ours] == 200, ours
            for theirs in paths_for(spec, east):
                assert statuses[theirs] == 404, theirs
    # the sweep can see a leak: the 华北 records it may see are there
    everything = "\n".join(text for _, _, text in swept)
    assert north.name in everything and north.number in everything
    exports = [p for p, _, _ in swept if "/export" in p]
    assert any(p.endswith(".xlsx") for p in exports) and any(p.endswith(".csv")
                                                             for p in exports)


async def test_headquarters_sees_every_regions_records(harness: Harness) -> None:
    h = harness
    north, east = await seed_two_regions(h)
    swept = await sweep(h, "admin", north, east)
    everything = "\n".join(text for _, _, text in swept)
    for secret in (east.name, east.masked, east.number, north.name, north.number):
        assert secret in everything, secret
    statuses = {path: status for path, status, _ in swept}
    assert statuses[f"/customers/{east.customer_id}"] == 200
    assert statuses[f"/tickets/{east.number}"] == 200
    # an xlsx export as headquarters holds the 华东 customer: the workbook is really read
    xlsx = [text for path, _, text in swept if path.startswith("/customers/export.xlsx")]
    assert xlsx and all(east.name in text for text in xlsx)
