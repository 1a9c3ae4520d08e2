"""``hindsight profile``, ``hindsight check`` and ``hindsight drift``: data guards for CI.

Exit codes: 0 all good; 1 drift found (``--fail-on-drift``) or checks failed
(``--fail-on``); 2 bad input or usage. ``hindsight drift --save NAME`` also stores the
report in the ledger's store (the team server's Data page lists it) and prints its id,
on stderr when ``--json -`` has stdout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hindsight.cli.common import console, err_console, get_cli_ledger, print_json, table
from hindsight.data.checks import check_dataset
from hindsight.data.frames import to_arrow
from hindsight.data.profile import DatasetProfile, profile_table
from hindsight.data.reference import PROFILE_SUFFIX, resolve_reference, save_profile
from hindsight.drift.engine import drift_report
from hindsight.drift.stored import save_drift_report

__all__ = ["register"]

_STATUS = {"fail": "[bold red]fail[/]", "warn": "[yellow]warn[/]", "pass": "[green]pass[/]"}


@contextmanager
def _progress(total: int, label: str, enabled: bool) -> Iterator[Callable[[str], None] | None]:
    """A progress bar on stderr over ``total`` columns (nothing when disabled)."""
    if not enabled or total < 2:
        yield None
        return
    with Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda _name: bar.advance(task)


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def _resolve(ref: str) -> Any:
    """A profile (``.hsprof`` file or stored name) or the data at a path."""
    return resolve_reference(ref, ledger=None if Path(ref).exists() else get_cli_ledger())


def profile_cmd(
    data: Annotated[Path, typer.Argument(help="A .parquet (file or folder), .csv or .tsv file.")],
    save: Annotated[
        str | None, typer.Option(help="Store the profile in the hindsight store under this name.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help=f"Write the profile to this file ({PROFILE_SUFFIX}).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
) -> None:
    """Profile a dataset: types, nulls, distinct counts, moments, quantiles, top categories."""
    tbl = to_arrow(str(data), what="data")
    with _progress(tbl.num_columns, "profiling", not as_json) as tick:
        prof = profile_table(tbl, progress=tick)
    if out is not None:
        prof.save(out)
    record = save_profile(prof, save, ledger=get_cli_ledger()) if save else None
    if as_json:
        print_json({**prof.describe(), "digest": prof.digest, "saved_as": record})
        return
    _print_profile(prof)
    if out is not None:
        console.print(f"wrote {escape(str(out))}")
    if record is not None:
        console.print(f"stored as [bold]{escape(str(save))}[/] ({record})")


def _print_profile(prof: DatasetProfile) -> None:
    t = table(f"{prof.n_rows:,} rows, {len(prof.columns)} columns")
    for name in ("column", "kind", "missing", "distinct", "min / top", "median", "max", "mean"):
        t.add_column(name, justify="right" if name not in ("column", "kind", "min / top") else "left")
    for name, col in prof.columns.items():
        d = col.describe()
        if "quantiles" in d:
            t.add_row(
                escape(name), d["kind"], f"{d['null_rate']:.1%}", f"{d['distinct']:,}",
                _fmt(d["min"]), _fmt(d["quantiles"]["p50"]), _fmt(d["max"]), _fmt(d["mean"]),
            )
        else:
            top = ", ".join(f"{escape(x['value'])} ({x['count']:,})" for x in d["top"][:3])
            t.add_row(escape(name), d["kind"], f"{d['null_rate']:.1%}", f"{d['distinct']:,}", top, "", "", "")
    console.print(t)
    if prof.skipped:
        console.print(f"[yellow]skipped (unsupported types):[/] {escape(', '.join(prof.skipped))}")


def check_cmd(
    data: Annotated[Path, typer.Argument(help="The dataset to check (.parquet, .csv, .tsv).")],
    reference: Annotated[
        str | None,
        typer.Option(help=f"Reference data, a {PROFILE_SUFFIX} file, or a stored profile name."),
    ] = None,
    checks: Annotated[
        list[str] | None,
        typer.Option("--check", help="Run only these checks (repeatable): schema, nulls, "
                     "duplicates, range, categories, outliers, distribution, normality."),
    ] = None,
    normality: Annotated[
        list[str] | None, typer.Option(help="Also test these columns for normality (repeatable).")
    ] = None,
    fail_on: Annotated[
        str, typer.Option(help="Exit 1 on 'error' (failed checks), 'warning', or 'never'.")
    ] = "error",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a dataset against a reference: schema, nulls, duplicates, ranges, categories, outliers."""
    if fail_on not in ("error", "warning", "never"):
        raise typer.BadParameter("must be 'error', 'warning' or 'never'.", param_hint="'--fail-on'")
    report = check_dataset(
        str(data),
        reference=_resolve(reference) if reference else None,
        checks=checks or None,
        normality=normality or (),
    )
    if as_json:
        print_json(report.to_dict())
    else:
        t = table(f"{len(report.results)} checks on {report.n_rows:,} rows")
        for name in ("status", "check", "column", "finding"):
            t.add_column(name)
        for r in report.results:
            t.add_row(_STATUS[r.status], r.check, escape(r.column or "-"), escape(r.message))
        console.print(t)
        counts = report.to_dict()["counts"]
        console.print(f"{counts['fail']} failed, {counts['warn']} warnings, {counts['pass']} passed")
    bad = report.failed if fail_on == "error" else report.failed + report.warnings
    if fail_on != "never" and bad:
        raise typer.Exit(1)


def drift_cmd(
    reference: Annotated[
        str, typer.Argument(help=f"Reference data, a {PROFILE_SUFFIX} file, or a stored profile name.")
    ],
    current: Annotated[Path, typer.Argument(help="Current data (.parquet, .csv, .tsv).")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the JSON report here ('-' for stdout).")
    ] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")] = None,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit 1 when the dataset drifts (for CI).")
    ] = False,
    columns: Annotated[
        list[str] | None, typer.Option("--column", help="Only these columns (repeatable).")
    ] = None,
    tests: Annotated[
        list[str] | None,
        typer.Option("--test", help="COLUMN=TEST to choose a registry test for a column (repeatable)."),
    ] = None,
    multivariate: Annotated[
        list[str] | None,
        typer.Option(help="Also run a multivariate test: mmd, mmd_linear, c2st, pca_reconstruction."),
    ] = None,
    alpha: Annotated[float, typer.Option(help="False discovery rate across columns.")] = 0.05,
    drift_share: Annotated[
        float, typer.Option(help="Share of drifted columns at which the dataset drifts (0: any).")
    ] = 0.0,
    save: Annotated[
        str | None,
        typer.Option(help="Store the report in the hindsight store under this name (the "
                     "server's Data page lists it); prints its id."),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(help="The project a --save'd report belongs to (default: HINDSIGHT_PROJECT)."),
    ] = None,
) -> None:
    """Compare current data with a reference, column by column, and give a verdict."""
    if project is not None and save is None:
        raise typer.BadParameter("only applies with --save NAME.", param_hint="'--project'")
    chosen: dict[str, str] = {}
    for item in tests or []:
        col, sep, name = item.partition("=")
        if not sep or not col or not name:
            raise typer.BadParameter(f"expected COLUMN=TEST, got {item!r}.", param_hint="'--test'")
        chosen[col] = name
    ref = _resolve(reference)
    cur = to_arrow(str(current), what="current data")
    quiet = json_out is not None and str(json_out) == "-"
    with _progress(cur.num_columns, "comparing", not quiet) as tick:
        report = drift_report(
            ref,
            cur,
            columns=columns or None,
            tests=chosen,
            multivariate=multivariate or (),
            alpha=alpha,
            drift_share=drift_share,
            progress=tick,
        )
    if json_out is not None:
        if str(json_out) == "-":
            print_json(report.to_dict())
        else:
            report.to_json(json_out)
    if html_out is not None:
        report.to_html(html_out)
    saved = (
        save_drift_report(report, save, ledger=get_cli_ledger(), project=project)
        if save is not None else None
    )
    if not quiet:
        _print_drift(report)
        for path in (json_out, html_out):
            if path is not None:
                console.print(f"wrote {escape(str(path))}")
    if saved is not None:
        # With the report on stdout (--json -), the id goes to stderr: stdout stays JSON.
        (err_console if quiet else console).print(
            f"stored as [bold]{escape(str(save))}[/] ({saved})"
        )
    if fail_on_drift and report.drift_detected:
        raise typer.Exit(1)


def _print_drift(report: Any) -> None:
    t = table(
        f"{len(report.columns)} columns, {report.n_reference:,} reference vs "
        f"{report.n_current:,} current rows"
    )
    for name in ("column", "kind", "test", "statistic", "p (adj.)", "effect", "threshold", "drift"):
        t.add_column(name, justify="left" if name in ("column", "kind", "test") else "right")
    for f in sorted(report.columns, key=lambda c: (not c.drifted, c.column)):
        t.add_row(
            escape(f.column), f.kind, f.test, _fmt(f.statistic, ".4g"), _fmt(f.p_adjusted),
            f"{f.effect_name} {_fmt(f.effect_size, '.4f')}", _fmt(f.effect_threshold, ".4f"),
            "[bold red]DRIFT[/]" if f.drifted else "[green]ok[/]",
        )
    console.print(t)
    for c in report.schema_changes:
        console.print(f"[yellow]schema:[/] {escape(c.column)} {c.change}")
    for m in report.multivariate:
        console.print(f"multivariate {m['test']}: {'[bold red]DRIFT[/]' if m['drifted'] else '[green]ok[/]'}"
                      f" (p {_fmt(m.get('p_value'))}, effect {_fmt(m.get('effect_size'))})")
    verdict = "[bold red]drift detected[/]" if report.drift_detected else "[bold green]no drift[/]"
    console.print(f"{verdict}: {len(report.drifted_columns)} of {len(report.columns)} columns drifted "
                  f"({report.seconds:.2f} s)")
    console.print(f"[dim]{escape(report.rule)}[/]")


def register(app: typer.Typer) -> None:
    app.command("profile")(profile_cmd)
    app.command("check")(check_cmd)
    app.command("drift")(drift_cmd)

