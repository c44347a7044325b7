"""The bench's table, plot and check summary (issue 15's targets), from the rows __main__ measured."""
from __future__ import annotations

from pathlib import Path

from benchmarks import baseline

# Issue 15, "Done when" (run twice on a quiet machine).
MIN_THROUGHPUT_RATIO = 0.5   # at 200 resources with notes, 4 connections
MAX_P99_MS = 20              # at 200 resources with notes, 1 connection
MAX_P50_MS_10000 = 500       # at 10,000 resources with notes, 1 connection
# Issue 11, "Done when": the chart of 10,000 resources with 300 notes and 50 HTML reports evaluates in 1 s,
# and the 200-resource figures are no more than 20 % slower than at filing (benchmarks/baseline.py).
MAX_P50_MS_10000_ISSUE_11 = 1000


def find(rows: list[dict], size: int, notes: bool, connections: int) -> dict | None:
    return next((r for r in rows if (r["size"], r["notes"], r["connections"]) == (size, notes, connections)), None)


def _ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def _side(result: dict) -> list[str]:
    if result.get("failed"):
        return [f"FAILED: {result['failed']}", "", ""]
    return [_ms(result["p50_ms"]), _ms(result["p99_ms"]), f"{result['throughput_rps']:,.1f}"]


def table(rows: list[dict]) -> str:
    lines = ["| resources | notes | body | conns | service p50 | service p99 | service req/s | floor p50 | floor p99 | "
             "floor req/s | p50 ratio | throughput ratio |", "|" + "---|" * 12]
    for r in rows:
        notes = f"yes ({r['notes_count']} notes, {r['reports_count']} HTML)" if r["notes"] else "no"
        ratios = ([f"{r['ratio_p50']:.2f}", f"{r['ratio_throughput']:.2f}"] if r.get("ratio_p50") is not None
                  else ["", ""])
        lines.append("| " + " | ".join([f"{r['size']:,}", notes, f"{r['body_kb']:,} KB", str(r["connections"]),
                                         *_side(r["service"]), *_side(r["floor"]), *ratios]) + " |")
    return "\n".join(lines)


def filed_table(rows: list[dict], revision: str | None) -> str:
    """Today's service beside the revision at issue 11's filing, on the rows both served."""
    lines = [f"Issue 11's 200-resource condition: today's service and the revision at its filing ({revision or 'none'}), "
             f"same run, each measured twice alternating, each figure the better of its two (at most "
             f"{baseline.MAX_SLOWDOWN:.0%} of the filing figure, throughput inverted):", "",
             "| resources | notes | conns | service p50 | service p99 | service req/s | at filing p50 | at filing p99 | "
             "at filing req/s | p50 | p99 | throughput |", "|" + "---|" * 12]
    for r in rows:
        if "filed" not in r:
            continue
        today = r.get("service_vs_filed", r["service"])
        if r["filed"].get("failed") or today.get("failed"):
            change = ["", "", ""]
        else:
            change = [f"{v:.2f}x" for v in baseline.slowdowns(today, r["filed"]).values()]
        lines.append("| " + " | ".join([f"{r['size']:,}", "yes" if r["notes"] else "no", str(r["connections"]),
                                         *_side(today), *_side(r["filed"]), *change]) + " |")
    return "\n".join(lines)


def checks(rows: list[dict], fetch: dict, loss: dict) -> list[tuple[str, bool, str]]:
    """(target, met, measured) for each of issue 15's targets, issue 11's, then the fallback fetch and loss checks."""
    out = []

    def target(name, row, measure, limit_ok):
        if row is None:
            out.append((name, False, "row not measured"))
        elif row["service"].get("failed") or row["floor"].get("failed"):
            out.append((name, False, f"row failed: {row['service'].get('failed') or row['floor'].get('failed')}"))
        else:
            value, text = measure(row)
            out.append((name, limit_ok(value), text))

    target(f"200 resources with notes, 4 connections: throughput >= {MIN_THROUGHPUT_RATIO}x the floor's",
           find(rows, 200, True, 4), lambda r: (r["ratio_throughput"], f"{r['ratio_throughput']:.2f}x "
           f"({r['service']['throughput_rps']:.0f} vs {r['floor']['throughput_rps']:.0f} req/s)"),
           lambda v: v >= MIN_THROUGHPUT_RATIO)
    target(f"200 resources with notes, 1 connection: service p99 <= {MAX_P99_MS} ms", find(rows, 200, True, 1),
           lambda r: (r["service"]["p99_ms"], _ms(r["service"]["p99_ms"])), lambda v: v <= MAX_P99_MS)
    target(f"10,000 resources with notes, 1 connection: service p50 <= {MAX_P50_MS_10000} ms", find(rows, 10000, True, 1),
           lambda r: (r["service"]["p50_ms"], f"{_ms(r['service']['p50_ms'])} ({r['service']['requests']} requests)"),
           lambda v: v <= MAX_P50_MS_10000)
    target(f"issue 11, 10,000 resources with notes, 1 connection: service p50 <= {MAX_P50_MS_10000_ISSUE_11:,} ms",
           find(rows, 10000, True, 1), lambda r: (r["service"]["p50_ms"], _ms(r["service"]["p50_ms"])),
           lambda v: v <= MAX_P50_MS_10000_ISSUE_11)
    for size, notes in sorted(baseline.ROWS):
        for connections in (1, 4):
            row = find(rows, size, notes, connections)
            name = (f"issue 11, {size} resources {'with' if notes else 'without'} notes, {connections} connection"
                    f"{'s' if connections > 1 else ''}: p50, p99 and throughput within "
                    f"{baseline.MAX_SLOWDOWN - 1:.0%} of the revision at filing")
            filed = (row or {}).get("filed")
            today = (row or {}).get("service_vs_filed") or (row or {}).get("service")
            if row is None or filed is None:
                out.append((name, False, "not measured"))
            elif filed.get("failed") or today.get("failed"):
                out.append((name, False, filed.get("failed") or today["failed"]))
            else:
                slower = baseline.slowdowns(today, filed)
                out.append((name, max(slower.values()) <= baseline.MAX_SLOWDOWN,
                            ", ".join(f"{k} {v:.2f}x" for k, v in slower.items())))
    out.append(("fallback fetch near the slowest query, not the sum", fetch["p50_ms"] < fetch["sum_of_queries_ms"] / 2,
                f"p50 {fetch['p50_ms']:.0f} ms vs sum {fetch['sum_of_queries_ms']} ms"))
    out.append(("load without loss", loss["errors"] == 0 and loss["lost"] == 0,
                f"{loss['errors']} errors, {loss['feedback']['count']} feedback sent, {loss['feedback_stored']} stored"))
    failed = [r for r in rows if r["service"].get("failed") or r["floor"].get("failed")]
    out.append(("every row measured: 2xx answers only, no socket errors or timeouts, at least one answer", not failed,
                f"{len(failed)} of {len(rows)} rows failed" if failed else f"{len(rows)} rows"))
    return out


def check_lines(results: list[tuple[str, bool, str]]) -> list[str]:
    return [f"{'PASS' if ok else 'FAIL'}  {name}: {value}" for name, ok, value in results]


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, notes in zip(axes, (False, True)):
        latency_rows = [r for r in rows if r["notes"] == notes and r["connections"] == 1]
        for name, style, color in (("service", "o-", "tab:blue"), ("floor", "s--", "tab:green")):
            measured = [r for r in latency_rows if not r[name].get("failed")]
            sizes = [r["size"] for r in measured]
            ax.plot(sizes, [r[name]["p50_ms"] for r in measured], style, color=color, label=f"{name} p50")
            ax.plot(sizes, [r[name]["p99_ms"] for r in measured], style, color=color, alpha=0.35, label=f"{name} p99")
        ax.set_xscale("log"), ax.set_yscale("log")
        ax.set_xlabel("chart size (resources in prefetch)")
        ax.set_title("with notes (3 % notes, 0.5 % HTML reports)" if notes else "without notes", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("latency at 1 connection (ms)")
    axes[1].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
