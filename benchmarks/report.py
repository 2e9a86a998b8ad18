"""The markdown summary of a run (``latest.md``)."""

from __future__ import annotations

import re
from typing import Any

_OPS = {"<=": "≤", ">=": "≥", "==": "="}


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _unit(value: Any, unit: str) -> str:
    return f"{_number(value)} {unit}".strip()


def markdown(document: dict[str, Any]) -> str:
    machine = document["machine"]
    lines = [
        f"# django_mmc benchmark ({document['mode']} run, {document['started_at']})",
        "",
        f"{machine['cpus']} CPUs, Python {machine['python']}, PostgreSQL "
        f"{machine['postgresql']}, Redis {machine['redis']}, Django {machine['django']}, "
        f"Celery {machine['celery']}; {document['duration_s']:.0f} s in all; load average "
        f"{machine['load_average_at_start'][0]} at the start, "
        f"{machine['load_average_at_end'][0]} at the end.",
        "",
        "| Scenario | Target | Measured | Target is | Met |",
        "|---|---|---|---|---|",
    ]
    results = document["results"]
    for name, result in results.items():
        if "error" in result:
            lines.append(f"| {name} | - | error (see latest.json) | - | no |")
            continue
        if result.get("available") is False:
            lines.append(f"| {name} | - | not available: {result['reason']} | - | - |")
            continue
        for item in result["targets"]:
            lines.append(
                f"| {name} | {item['name']} | {_unit(item['value'], item['unit'])} | "
                f"{_OPS[item['op']]} {_unit(item['limit'], item['unit'])} | "
                f"{'yes' if item['met'] else '**no**'} |")
    lines += ["", *details(results), ""]
    return "\n".join(lines)


def _statement(sql: str) -> str:
    """``UPDATE django_mmc_notification``, ``SELECT django_mmc_notification +3 joins``."""
    verb = sql.split(" ", 1)[0]
    table = re.search(r'(?:UPDATE|FROM|INTO) "([^"]+)"', sql)
    joins = sql.count(" JOIN ")
    return f"{verb} {table.group(1) if table else '?'}" + (f" +{joins} joins" if joins else "")


def details(results: dict[str, Any]) -> list[str]:
    """The figures behind the ratios."""
    out: list[str] = []
    send = results.get("send")
    if send and "error" not in send:
        out += ["## Send throughput", "", send["workers"] + "; ceiling: " + send["ceiling"] + ".",
                "", "| Latency | django_mmc /s | raw loops /s | ratio | CPU ms/notification "
                "(workers + creation) | token requests |", "|---|---|---|---|---|---|"]
        for key in ("latency_20ms", "latency_0ms"):
            r = send[key]
            mmc = r["django_mmc"]
            out.append(
                f"| {r['latency_ms']:.0f} ms | {mmc['per_second']} | {r['raw']['per_second']} "
                f"| {r['ratio']} | {mmc['cpu_ms_per_notification']} "
                f"({mmc['worker_cpu_ms_per_notification']} + "
                f"{mmc['create_cpu_ms_per_notification']}) | {mmc['token_requests']} |")
        raw = send["latency_0ms"]["raw"]
        out += ["", "For scale (the CPU budget is in absolute milliseconds, so it depends on "
                f"the machine): one plain `requests` POST cost the raw loops "
                f"{raw['client_cpu_ms_per_request']} ms of CPU on this machine at 0 ms."]
        out.append("")
    hooks = results.get("webhooks")
    if hooks and "error" not in hooks and hooks.get("available") is not False:
        out += ["## Webhooks", "", hooks["server"] + "; clients: " + hooks["clients"] + ".", "",
                "| View | requests/s | p50 ms | p99 ms | server CPU ms/request |",
                "|---|---|---|---|---|"]
        for key in ("bare", "django_mmc"):
            r = hooks[key]
            out.append(f"| {key} | {r['per_second']} | {r['p50_ms']} | {r['p99_ms']} | "
                       f"{r['server_cpu_ms_per_request']} |")
        if hooks.get("cycle_ratios"):
            out += ["", f"Ratio per cycle: {', '.join(map(str, hooks['cycle_ratios']))} "
                        f"(median {hooks['ratio']}; all requests together "
                        f"{hooks['overall_ratio']})."]
        out.append("")
    polling = results.get("polling")
    if polling and "error" not in polling:
        out += ["## Polling", "",
                f"{polling['notifications']:,} due notifications, "
                f"{polling['changed_on_platform']:,} changed on the platform: "
                f"{polling['http_calls']} HTTP calls, {polling['queries']} queries in "
                f"{polling['batches']} batches ({polling['queries_per_batch_min']}-"
                f"{polling['queries_per_batch_max']} per batch), "
                f"{polling['seconds']} s.", ""]
    queries = results.get("queries")
    if queries and "error" not in queries:
        bulk = ", ".join(f"{int(k):,} rows: {v['queries']} queries"
                         for k, v in queries["bulk"].items())
        statements = ", ".join(_statement(q) for q in queries["per_send"]["queries_of_one_send"])
        out += ["## Queries", "",
                f"One send: {queries['per_send']['max']} queries ({statements}).",
                f"Campaigns (chunks of {queries['bulk_chunk_size']}): {bulk}; each further "
                f"chunk adds {queries['bulk_queries_per_extra_chunk']} queries.", ""]
    memory = results.get("memory")
    if memory and "error" not in memory:
        out += ["## Memory", "",
                f"{memory['recipients']:,} recipients in {memory['seconds']} s "
                f"({memory['per_second']:,.0f}/s): peak RSS {memory['baseline_hwm_kb'] // 1024}"
                f" MB before, {memory['peak_hwm_kb'] // 1024} MB after.", ""]
    admin = results.get("admin")
    if admin and admin.get("available"):
        pages = ", ".join(f"{k} rows: {v['queries']} queries ({v['rows_shown']} shown)"
                          for k, v in admin["pages"].items())
        out += ["## Admin", "", f"Notification list, {pages}.", ""]
    return out
