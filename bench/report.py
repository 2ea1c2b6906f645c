"""The benchmark's output: one table with the ratios and targets, its JSON, and the growth of
every figure across runs at several scales."""

from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.measure import Figure

# The targets of issue 5, per kind of row. It holds "every console page and API list" to the
# stock admin and to the floor; the admin's own changelists (kind "admin") are measured beside
# them, ratios shown, and held to growth alone, like every page.
STOCK_RATIO = {"page1": 20, "deep": 100, "search": 100}
FLOOR_RATIO = 10
APPEND_VS_COPY = 0.2
RESTORE_VS_LOADDATA = 15
GROWTH = 1.5
# A page cannot be faster than its empty twin (bench/framework.py) plus the bare SQL for its rows.
EMPTY_TWIN = {"console.": "framework.console", "api.": "framework.api"}


def row(
    key: str,
    title: str,
    kind: str,
    figures: dict[str, Figure],
    unit: str = "ms",
) -> dict[str, Any]:
    """One table row with its ratios and whether it meets its target (None: no target or no
    figure to judge)."""
    logdeck, stock, floor = figures["logdeck"], figures["stock"], figures["floor"]
    result: dict[str, Any] = {
        "key": key,
        "title": title,
        "kind": kind,
        "unit": unit,
        "logdeck": logdeck.as_dict(),
        "stock": stock.as_dict(),
        "floor": floor.as_dict(),
        "stock_over_logdeck": None,
        "logdeck_over_floor": None,
        "target": "",
        "meets": None,
    }
    if kind == "langgraph":
        return _langgraph_row(result, logdeck, stock, floor)
    if unit == "ms":
        if logdeck.ok and stock.ok:
            result["stock_over_logdeck"] = round(stock.median_ms / logdeck.median_ms, 1)
        if logdeck.ok and floor.ok:
            result["logdeck_over_floor"] = round(logdeck.median_ms / floor.median_ms, 1)
        checks = []
        wanted = STOCK_RATIO.get(kind)
        if wanted and result["stock_over_logdeck"] is not None:
            checks.append(result["stock_over_logdeck"] >= wanted)
            result["target"] = f">={wanted}x stock"
        if kind != "admin" and result["logdeck_over_floor"] is not None:
            checks.append(result["logdeck_over_floor"] <= FLOOR_RATIO)
            result["target"] += (", " if result["target"] else "") + f"<={FLOOR_RATIO}x floor"
        result["meets"] = all(checks) if checks else None
        return result
    # Throughput rows: higher is better; the ratio is Logdeck's rate over the other's.
    rate = logdeck.extra.get("rate") if logdeck.ok else None
    stock_rate = stock.extra.get("rate") if stock.ok else None
    floor_rate = floor.extra.get("rate") if floor.ok else None
    if rate and stock_rate:
        result["stock_over_logdeck"] = round(rate / stock_rate, 1)  # here: Logdeck's speed-up
    if rate and floor_rate:
        result["logdeck_over_floor"] = round(rate / floor_rate, 2)  # here: share of the floor
    if key == "ingest.api_append" and result["logdeck_over_floor"] is not None:
        result["target"] = f">={APPEND_VS_COPY}x COPY"
        result["meets"] = result["logdeck_over_floor"] >= APPEND_VS_COPY
    if key == "restore" and result["stock_over_logdeck"] is not None:
        result["target"] = f">={RESTORE_VS_LOADDATA}x loaddata"
        exact = logdeck.extra.get("exact") is not False
        result["meets"] = result["stock_over_logdeck"] >= RESTORE_VS_LOADDATA and exact
    return result


# LangGraph's checkpointers: LogdeckSaver goes over HTTP, so it is held to a ratio of
# PostgresSaver on the same database (stock) rather than beating it; SqliteSaver is the floor.
LANGGRAPH_STEP_VS_POSTGRES = 3


def _langgraph_row(
    result: dict[str, Any], logdeck: Figure, stock: Figure, floor: Figure
) -> dict[str, Any]:
    # Their SQL runs in the server's threads or the savers' own connections: not counted here.
    for side in ("logdeck", "stock", "floor"):
        result[side]["queries"] = None
    if logdeck.ok and stock.ok:
        result["stock_over_logdeck"] = round(stock.median_ms / logdeck.median_ms, 2)
    if logdeck.ok and floor.ok:
        result["logdeck_over_floor"] = round(logdeck.median_ms / floor.median_ms, 1)
    if result["key"] == "langgraph.step" and logdeck.ok and stock.ok:
        result["target"] = f"<={LANGGRAPH_STEP_VS_POSTGRES}x PostgresSaver"
        result["meets"] = logdeck.median_ms <= LANGGRAPH_STEP_VS_POSTGRES * stock.median_ms
    return result


def budgets(rows: list[dict[str, Any]]) -> None:
    """Give each row with a ratio target the time its targets allow (`budget_ms`: the stock's
    time over the ratio asked, or ten floors, whichever is less) and the least the page could
    cost in the same run (`least_ms`: its empty twin plus the bare SQL). A budget under the least
    is a target no page of this stack meets, however its queries and templates are written."""
    medians = {r["key"]: r["logdeck"]["median_ms"] for r in rows}
    for r in rows:
        r["budget_ms"] = r["least_ms"] = None
        if not r["target"] or r["unit"] != "ms":
            continue
        stock, floor = r["stock"]["median_ms"], r["floor"]["median_ms"]
        allowed = [] if floor is None else [floor * FLOOR_RATIO]
        if r["kind"] in STOCK_RATIO and stock is not None:
            allowed.append(stock / STOCK_RATIO[r["kind"]])
        twin = next((k for prefix, k in EMPTY_TWIN.items() if r["key"].startswith(prefix)), "")
        if allowed:
            r["budget_ms"] = round(min(allowed), 2)
        if floor is not None and medians.get(twin) is not None:
            r["least_ms"] = round(medians[twin] + floor, 2)
        if r["key"] == "langgraph.step" and stock is not None:
            # Over HTTP a step is three requests: three that do nothing are its least.
            r["budget_ms"] = round(stock * LANGGRAPH_STEP_VS_POSTGRES, 2)
            if medians.get("langgraph.framework") is not None:
                r["least_ms"] = medians["langgraph.framework"]


def out_of_reach(r: dict[str, Any]) -> bool:
    """Whether the row's targets ask for less time than its empty twin and the bare SQL take."""
    budget, least = r.get("budget_ms"), r.get("least_ms")
    return budget is not None and least is not None and budget < least


def _budget(r: dict[str, Any]) -> str:
    if r.get("budget_ms") is None:
        return ""
    text = f"{r['budget_ms']:.1f}"
    return f"{text} < {r['least_ms']:.1f} least" if out_of_reach(r) else text


def _cell(figure: dict[str, Any], unit: str) -> str:
    if figure["median_ms"] is None:
        return figure["note"] or "—"
    if unit != "ms":
        text = f"{figure['rate']:,} {unit}"
        if figure.get("peak_mb") is not None and not math.isnan(figure["peak_mb"]):
            text += f", {figure['peak_mb']:.0f} MB"
        if figure.get("exact") is not None:
            text += ", exact" if figure["exact"] else ", NOT EXACT"
        return text
    queries = "" if figure["queries"] is None else f" {figure['queries']}q"
    p95 = "" if figure["p95_ms"] is None else f" ({figure['p95_ms']:.1f})"
    return f"{figure['median_ms']:.1f}{p95}{queries}"


def _ratio(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f}x" if unit == "ms" or value >= 1 else f"{value:.2f}x"


def table(rows: list[dict[str, Any]]) -> str:
    """The one table: medians (p95) and query counts, ratios, targets."""
    header = (
        "measurement",
        "Logdeck",
        "stock",
        "floor",
        "stock/Ld",
        "Ld/floor",
        "budget ms",
        "target",
    )
    lines = [
        [
            r["title"],
            _cell(r["logdeck"], r["unit"]),
            _cell(r["stock"], r["unit"]),
            _cell(r["floor"], r["unit"]),
            _ratio(r["stock_over_logdeck"], r["unit"]),
            _ratio(r["logdeck_over_floor"], r["unit"]),
            _budget(r),
            "" if r["meets"] is None else ("ok " if r["meets"] else "MISS ") + r["target"],
        ]
        for r in rows
    ]
    widths = [min(48, max(len(str(x[i])) for x in [header, *lines])) for i in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    for line in lines:
        out.append("  ".join(str(c)[:48].ljust(w) for c, w in zip(line, widths, strict=True)))
    notes = [
        "Pages: median (p95) ms and SQL queries; ingestion and backup rows: rate and peak memory.",
        "stock/Ld: how many times faster Logdeck is (for rates: Logdeck's rate / stock's).",
        "Ld/floor: Logdeck's time over the raw-SQL floor (for ingestion: share of COPY's rate).",
        "ingest: stock (bulk_create) and floor (COPY) store the batches' messages and tool calls.",
        "admin rows: no ratio target (the targets name console pages and API lists); growth only.",
        "budget: the most a page may take and meet its targets (stock / ratio, or 10 floors);",
        "  'least': what its empty twin (framework rows) and the bare SQL take, in this run. A",
        "  budget under it is out of reach of any page on this stack.",
    ]
    return "\n".join([*out, "", *notes])


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def _growth(found: list[dict[str, Any] | None], side: str, unit: str) -> str:
    """Largest scale's figure over the smallest's, for the stock or floor side of a row."""
    field = "median_ms" if unit == "ms" else "rate"
    values = [r[side].get(field) for r in found if r and r[side].get("median_ms") is not None]
    if len(values) < 2 or not values[0]:
        return "—"
    return f"{values[-1] / values[0]:.2f}x"


def compare(paths: list[Path]) -> str:
    """How each median and query count grows from the smallest to the largest run."""
    runs = sorted(
        (json.loads(p.read_text()) for p in paths), key=lambda run: run["dataset"]["messages"]
    )
    if len(runs) < 2:
        return "--compare needs at least two JSON files from runs at different scales."
    scales = [run["scale"] for run in runs]
    header = ["measurement", *scales, "growth", "queries", "rows", "stock growth", "floor growth"]
    lines = []
    keys: list[str] = []
    for run in runs:
        keys += [r["key"] for r in run["rows"] if r["key"] not in keys]
    for key in keys:
        found = [next((r for r in run["rows"] if r["key"] == key), None) for run in runs]
        first = next(r for r in found if r)
        unit = first["unit"]
        cells, values, queries, shown = [], [], [], []
        for r in found:
            figure = r["logdeck"] if r else None
            shown.append(figure.get("shown_rows") if figure else None)
            if not figure or figure["median_ms"] is None:
                cells.append("n/a")
                continue
            value = figure["median_ms"] if unit == "ms" else figure["rate"]
            values.append(value)
            queries.append(figure["queries"])
            cells.append(f"{value:.1f} ms" if unit == "ms" else f"{value:,} {unit}")
        growth, same_queries = "—", "—"
        records = "—"  # the records the page showed at each scale, where counted
        if any(n is not None for n in shown):
            records = "/".join("?" if n is None else str(n) for n in shown)
        if len(values) >= 2 and values[0]:
            factor = values[-1] / values[0]
            slower = factor if unit == "ms" else 1 / factor if factor else math.inf
            growth = f"{factor:.2f}x" + ("" if slower <= GROWTH or unit != "ms" else " MISS")
            if any(q is not None for q in queries):  # rates have no query count
                counts = "/".join(map(str, queries))
                # Fewer at scale is no miss: the admin's exact count of a small table becomes the
                # planner's estimate past its window.
                if any(b > a for a, b in pairwise(queries)):
                    same_queries = f"GROW {counts}"
                elif len(set(queries)) > 1:
                    same_queries = f"fewer {counts}"
                else:
                    same_queries = "same"
        lines.append(
            [
                first["title"],
                *cells,
                growth,
                same_queries,
                records,
                _growth(found, "stock", unit),
                _growth(found, "floor", unit),
            ]
        )
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.append("")
    out.append(
        f"growth: Logdeck's median at {scales[-1]} over {scales[0]} (target for pages: <= "
        f"{GROWTH}x); queries: the query count at every scale (target: never more); rows: the "
        "records the page showed at every scale (a page that shows more at scale does more "
        "work). For rates (msgs/s, rows/s) growth is the largest scale's rate over the smallest's."
    )
    return "\n".join(out)
