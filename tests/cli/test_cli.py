"""The ``hindsight`` command line: help, output, --json, exit codes and errors.

Exit codes, stderr and "no traceback" go through the real console script in a
subprocess (that is what users and CI run); the rest uses Typer's CliRunner on
the app in-process, which is much faster. Ledgers are filled through the Python API.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from hindsight import __version__
from hindsight.cli.main import app
from hindsight.config import Settings
from hindsight.errors import ConfigError, LedgerError
from hindsight.ledger import Ledger, add_lesson, experiment, learning_metrics

HINDSIGHT = Path(sys.executable).parent / "hindsight"
runner = CliRunner()

OOM = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.78 GiB total capacity)"
OOM_LOG = f"""\
epoch 3 step 120 loss 0.412
Traceback (most recent call last):
  File "train.py", line 88, in <module>
    loss = model(batch).loss
RuntimeError: {OOM}
"""

# -- helpers -----------------------------------------------------------------------------


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HINDSIGHT_", "MLFLOW_"))}
    for var in ("EDITOR", "VISUAL", "FORCE_COLOR", "NO_COLOR"):
        env.pop(var, None)
    env.update(extra)
    return env


def hs(
    url: str, *args: str, input: str | None = None, cwd: Path | None = None,
    timeout: float = 120, **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run the real console script on a store."""
    return subprocess.run(
        [str(HINDSIGHT), "--store", url, *args], capture_output=True, text=True, input=input,
        cwd=cwd, env=_clean_env(**env), timeout=timeout, check=False,
    )


def cli(url: str, *args: str, input: str | None = None) -> Result:
    """Run the app in-process (fast); output is not a terminal, so no colours."""
    return runner.invoke(app, ["--store", url, *args], input=input)


def ok(url: str, *args: str, input: str | None = None) -> str:
    r = cli(url, *args, input=input)
    assert r.exit_code == 0, (args, r.output, r.exception)
    return r.stdout


def ok_json(url: str, *args: str) -> Any:
    return json.loads(ok(url, *args, "--json"))


def assert_clean_error(r: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """Exit ``code``, no traceback, and an ``error:`` line on stderr; returns that line."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def flat(text: str) -> str:
    """Text with Rich boxes and line wrapping removed, for substring checks."""
    return " ".join(re.sub(r"[│┃╭╮╰╯─━┏┓┗┛┡┩╇┳┻╋┣┫]", " ", text).split())


# -- a small ledger filled through the API -----------------------------------------------


@dataclass
class Team:
    """What ``team`` recorded."""

    url: str
    ledger: Ledger
    good: str
    oom1: str
    oom2: str
    fail1: str
    fail2: str
    old: str
    lesson: str


def _crash(ledger: Ledger, name: str, project: str) -> tuple[str, str]:
    exp = experiment(name, config={"batch_size": 512, "seed": 1}, project=project,
                     ledger=ledger, quiet=True, tags=["cnn"])
    with pytest.raises(RuntimeError), exp:
        raise RuntimeError(OOM)
    assert exp.failure is not None
    return exp.id, exp.failure.failure.id


@pytest.fixture
def team(ledger: Ledger, sqlite_url: str) -> Team:
    """Two projects: a success, an OOM crash with a lesson, its repeat, an old run."""
    with experiment("old-run", project="nlp", ledger=ledger, quiet=True) as old:
        old.log_metric("f1", 0.7)
    ledger.store.update("experiment", old.id, started_at=time.time() - 3 * 3600)
    with experiment("resnet", project="vision", ledger=ledger, quiet=True, tags=["cnn"],
                    criteria={"acc": ">= 0.9"}, hypothesis="A ResNet reaches 90%.") as good:
        good.log_metrics({"acc": 0.95, "loss": 0.2})
        good.next_step("Try a wider ResNet.")
    oom1, fail1 = _crash(ledger, "resnet-big", "vision")
    lesson_id = add_lesson(ledger, "Halve the batch size on 16 GB GPUs.", tags=["gpu"],
                           sources=[oom1]).id
    oom2, fail2 = _crash(ledger, "resnet-big", "vision")
    return Team(sqlite_url, ledger, good.id, oom1, oom2, fail1, fail2, old.id, lesson_id)


# -- help and version --------------------------------------------------------------------


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from _commands(sub, (*path, name))


EXPECTED_COMMANDS = {
    (), ("ls",), ("show",), ("similar",), ("export",), ("metrics",), ("run",), ("diagnose",),
    ("demo",), ("lessons",), ("lessons", "add"), ("lessons", "list"), ("lessons", "search"),
    ("lessons", "apply"), ("postmortem",), ("postmortem", "new"), ("postmortem", "show"),
    ("postmortem", "edit"), ("postmortem", "list"), ("import",), ("import", "mlflow"),
    ("profile",), ("check",), ("drift",), ("serve",), ("monitor",), ("monitor", "run"),
    ("monitor", "watch"), ("monitor", "windows"), ("monitor", "findings"), ("evaluate",),
    ("server",), ("users",), ("users", "add"), ("users", "password"), ("users", "token"),
    ("users", "list"), ("sync",),
}


def test_the_help_tests_cover_every_command() -> None:
    found = {path for path, _ in _commands(typer.main.get_command(app))}
    assert found == EXPECTED_COMMANDS


@pytest.mark.parametrize("path", sorted(EXPECTED_COMMANDS), ids=lambda p: " ".join(p) or "root")
def test_help_of_every_command(path: tuple[str, ...]) -> None:
    commands = dict(_commands(typer.main.get_command(app)))
    cmd = commands[path]
    r = runner.invoke(app, [*path, "--help"])
    assert r.exit_code == 0, r.output
    text = flat(r.stdout)
    assert "Usage: hindsight " + " ".join(path) in " ".join(r.stdout.split())
    summary = (cmd.help or "").strip().splitlines()[0]
    assert summary and flat(summary) in text
    for param in cmd.params:  # every option and argument says what it is for
        if param.name not in ("help", "install_completion", "show_completion"):
            assert getattr(param, "help", None), f"{' '.join(path)}: {param.name} has no help"


def test_version_through_the_console_script(sqlite_url: str) -> None:
    r = hs(sqlite_url, "--version")
    assert (r.returncode, r.stdout.strip()) == (0, f"hindsight {__version__}")
    root = runner.invoke(app, ["--help"])
    for name in ("ls", "show", "similar", "lessons", "postmortem", "run", "diagnose", "demo"):
        assert f" {name} " in root.stdout


# -- ls ------------------------------------------------------------------------------------


def test_ls_table_shows_whole_ids_and_json_lists_everything(team: Team) -> None:
    out = ok(team.url, "ls")
    for exp_id in (team.good, team.oom1, team.oom2, team.old):
        assert exp_id in out  # on one line, copyable, even in an 80-column table
    assert "crashed / failure" in flat(out) and "finished / success" in flat(out)
    rows = ok_json(team.url, "ls")
    assert {r["id"] for r in rows} == {team.good, team.oom1, team.oom2, team.old}
    assert [r["started_at"] for r in rows] == sorted((r["started_at"] for r in rows), reverse=True)


def test_ls_filters(team: Team) -> None:
    def ids(*args: str) -> set[str]:
        return {r["id"] for r in ok_json(team.url, "ls", *args)}

    assert ids("--failed") == {team.oom1, team.oom2}
    assert ids("--project", "nlp") == {team.old}
    assert ids("--since", "1h") == {team.good, team.oom1, team.oom2}
    assert ids("--failed", "--project", "vision", "--since", "1h") == {team.oom1, team.oom2}
    assert ids("--failed", "--project", "nlp", "--since", "1h") == set()
    assert ids("--status", "finished") == {team.good, team.old}
    assert ids("--limit", "1") == {team.oom2}
    assert ids("--since", "2000-01-01") == ids()


def test_colours_in_a_terminal_do_not_leak_into_json(team: Team) -> None:
    colour = {"FORCE_COLOR": "1", "TERM": "xterm-256color"}
    table = hs(team.url, "ls", **colour)
    assert table.returncode == 0 and "\x1b[" in table.stdout  # the table is coloured
    r = hs(team.url, "ls", "--failed", "--project", "vision", "--since", "1h", "--json", **colour)
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout
    assert {x["id"] for x in json.loads(r.stdout)} == {team.oom1, team.oom2}


def test_bad_time_window_and_status_are_usage_errors(sqlite_url: str) -> None:
    line = assert_clean_error(hs(sqlite_url, "ls", "--since", "yesterday-ish"))
    assert "'--since'" in line and "yesterday-ish" in line and "7d" in line
    r = cli(sqlite_url, "metrics", "--since", "yesterday-ish")
    assert r.exit_code == 2 and "is not a time" in flat(r.output)
    r = cli(sqlite_url, "ls", "--status", "exploded")
    assert r.exit_code == 2 and "exploded is not a status" in flat(r.output)


# -- show ------------------------------------------------------------------------------------


def test_show_crashed_experiment_has_diagnosis_similar_failures_and_lessons(team: Team) -> None:
    text = flat(ok(team.url, "show", team.oom2))
    assert team.oom2 in text and "crashed / failure" in text
    assert f"failure {team.fail2}" in text
    assert "dl.gpu_oom" in text and "512 -> 256" in text  # diagnosis with a concrete fix
    assert "Similar past failures" in text and team.fail1 in text
    assert f"lesson {team.lesson}: Halve the batch size on 16 GB GPUs." in text


def test_show_successful_experiment_lists_verdicts_and_next_steps(team: Team) -> None:
    text = flat(ok(team.url, "show", team.good))
    assert "finished / success" in text and "acc >= 0.9" in text and "met" in text
    assert "next step: Try a wider ResNet." in text
    assert "Similar past failures" not in text


def test_show_md(team: Team) -> None:
    md = ok(team.url, "show", team.oom1, "--md")
    assert md.startswith("# resnet-big\n")
    assert f"`{team.oom1}`" in md and "## Failure" in md and "dl.gpu_oom" in md
    assert "## Lessons" in md and team.lesson in md


def test_show_json(team: Team) -> None:
    data = ok_json(team.url, "show", team.oom2)
    assert {"failure", "similar", "lessons", "next_steps"} <= set(data)
    assert data["id"] == team.oom2 and data["status"] == "crashed"
    assert data["failure"]["id"] == team.fail2
    assert data["failure"]["category"] == "dl.gpu_oom"
    top = data["similar"][0]
    assert top["failure"]["id"] == team.fail1 and top["exact"] is True
    assert [les["id"] for les in top["lessons"]] == [team.lesson]
    first = ok_json(team.url, "show", team.oom1)
    assert [les["id"] for les in first["lessons"]] == [team.lesson]
    good = ok_json(team.url, "show", team.good)
    assert good["failure"] is None and good["similar"] == []
    assert good["next_steps"] == ["Try a wider ResNet."]


def test_show_by_unique_prefix_and_ambiguous_prefix(team: Team) -> None:
    others = [team.good, team.oom1, team.oom2, team.old, team.fail1, team.fail2, team.lesson]
    n = next(n for n in range(5, len(team.oom2))
             if not any(o.startswith(team.oom2[:n]) for o in others if o != team.oom2))
    assert ok_json(team.url, "show", team.oom2[:n])["id"] == team.oom2
    r = cli(team.url, "show", "exp_")
    assert isinstance(r.exception, LedgerError) and "matches several records" in str(r.exception)


def test_show_failure_lesson_and_postmortem_ids(team: Team) -> None:
    data = ok_json(team.url, "show", team.fail2)
    assert set(data) == {"failure", "similar"}
    assert data["failure"]["experiment_id"] == team.oom2
    assert data["similar"][0]["failure"]["id"] == team.fail1
    text = flat(ok(team.url, "show", team.fail2))  # a failure shows its experiment
    assert team.oom2 in text and "dl.gpu_oom" in text

    les = ok_json(team.url, "show", team.lesson)
    assert les["id"] == team.lesson and les["sources"] == [team.oom1]
    text = flat(ok(team.url, "show", team.lesson))
    assert "Halve the batch size" in text and team.oom1 in text and "nobody yet" in text

    pm = ok_json(team.url, "postmortem", "new", "--from", team.fail2)
    assert ok(team.url, "show", pm["id"]).startswith("# resnet-big")
    assert ok_json(team.url, "show", pm["id"])["id"] == pm["id"]


def test_user_text_that_looks_like_markup_prints_as_written(ledger: Ledger, sqlite_url: str) -> None:
    exp = experiment("net [/]", project="p[x]", ledger=ledger, quiet=True,
                     hypothesis="[bold]wide[/bold] is better", config={"hidden": [64, 32]})
    with pytest.raises(ValueError), exp:
        raise ValueError("bad [/] shape [x]")
    exp_id = exp.id
    les = ok_json(sqlite_url, "lessons", "add", "use [red]care[/] with [/]", "--from", exp_id)
    text = ok(sqlite_url, "show", exp_id)
    for literal in ("net [/]", "[bold]wide[/bold] is better", "hidden=[64, 32]", "bad [/] shape [x]",
                    "use [red]care[/] with [/]"):
        assert literal in text, literal
    assert "net [/]" in ok(sqlite_url, "ls")
    assert "use [red]care[/] with [/]" in flat(ok(sqlite_url, "lessons", "list"))
    assert "use [red]care[/] with [/]" in ok(sqlite_url, "show", les["id"])


# -- similar ---------------------------------------------------------------------------------


def test_similar_by_failure_and_by_experiment(team: Team) -> None:
    by_failure = ok_json(team.url, "similar", team.fail2)
    by_experiment = ok_json(team.url, "similar", team.oom2)
    assert by_failure == by_experiment
    assert by_failure[0]["failure"]["id"] == team.fail1
    assert by_failure[0]["lessons"][0]["text"] == "Halve the batch size on 16 GB GPUs."
    assert ok_json(team.url, "similar", team.good) == []
    text = flat(ok(team.url, "similar", team.fail2, "-k", "1"))
    assert "Similar past failures" in text and team.fail1 in text and team.lesson in text
    assert "No similar past failures" in ok(team.url, "similar", team.good)


# -- lessons ---------------------------------------------------------------------------------


def test_lessons_add_list_search_apply(team: Team) -> None:
    les = ok_json(team.url, "lessons", "add", "Pin the CUDA allocator config", "--from", team.oom2,
                  "--tag", "gpu", "--tag", "infra")
    assert les["sources"] == [team.oom2] and les["tags"] == ["gpu", "infra"]
    assert les["project"] == "vision"  # from its source
    assert re.search(r"recorded lesson les_\w+", ok(team.url, "lessons", "add", "Plain text"))

    listed = ok_json(team.url, "lessons", "list")
    assert les["id"] in {x["id"] for x in listed} and team.lesson in {x["id"] for x in listed}
    assert {x["id"] for x in ok_json(team.url, "lessons", "list", "--tag", "infra")} == {les["id"]}
    assert {x["id"] for x in ok_json(team.url, "lessons", "list", "-p", "vision")} == {
        les["id"], team.lesson}
    table = ok(team.url, "lessons", "list")
    assert les["id"] in table and team.lesson in table

    found = ok_json(team.url, "lessons", "search", "batch GPUs")
    assert [x["id"] for x in found] == [team.lesson]
    assert ok_json(team.url, "lessons", "search", "batch nothing-like-this") == []
    assert team.lesson in ok(team.url, "lessons", "search", "halve")

    applied = ok_json(team.url, "lessons", "apply", team.lesson, team.good)
    assert applied["applied_by"] == [team.good]
    assert f"{team.oom2} applies {team.lesson}" in ok(team.url, "lessons", "apply", team.lesson,
                                                      team.oom2[:-2])
    assert ok_json(team.url, "show", team.lesson)["applied_by"] == sorted([team.good, team.oom2])


# -- post-mortems ----------------------------------------------------------------------------


def test_postmortem_new_from_failure_prints_markdown_and_saves_a_draft(team: Team) -> None:
    r = cli(team.url, "postmortem", "new", "--from", team.fail2)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("# resnet-big: GPU out of memory\n")
    for heading in ("## What happened", "## Root cause", "## Timeline", "## Action items",
                    "## Lessons", "## Evidence"):
        assert heading in r.stdout
    assert "Halve the batch size on 16 GB GPUs." in r.stdout  # the earlier lesson, carried in
    m = re.search(r"draft (pm_\w+) saved", r.stderr)  # not mixed into the Markdown
    assert m and m.group(1) not in r.stdout.split("## Evidence")[0].replace(
        f"postmortem {m.group(1)}", "")
    rows = ok_json(team.url, "postmortem", "list")
    assert [(x["id"], x["status"], x["failure_id"]) for x in rows] == [
        (m.group(1), "draft", team.fail2)]
    assert m.group(1) in ok(team.url, "postmortem", "list")


def test_postmortem_new_from_experiment(team: Team) -> None:
    pm = ok_json(team.url, "postmortem", "new", "--from", team.oom1)
    assert pm["failure_id"] == team.fail1 and pm["experiment_id"] == team.oom1
    r = cli(team.url, "postmortem", "new", "--from", team.good)
    assert isinstance(r.exception, LedgerError) and "no recorded failure" in str(r.exception)
    r = cli(team.url, "postmortem", "new", "--from", team.lesson)
    assert isinstance(r.exception, LedgerError) and "takes a failure id" in str(r.exception)


def _section(md: str, heading: str, text: str) -> str:
    """Replace the body of a Markdown section."""
    return re.sub(rf"(## {heading}\n\n)(.*?)(\n\n## )", lambda m: m.group(1) + text + m.group(3),
                  md, count=1, flags=re.S)


def test_postmortem_edit_from_file_saves_sections_and_records_lessons(
    team: Team, tmp_path: Path
) -> None:
    pm = ok_json(team.url, "postmortem", "new", "--from", team.fail2)
    md = ok(team.url, "postmortem", "show", pm["id"])
    md = _section(md, "Root cause", "batch_size=512 does not fit a 16 GB GPU.")
    md = md.replace("## Lessons\n\n", "## Lessons\n\n- Run a one-batch smoke test before a sweep.\n")
    edited = tmp_path / "edited.md"
    edited.write_text(md, encoding="utf-8")

    out = ok(team.url, "postmortem", "edit", pm["id"], "--file", str(edited), "--status", "reviewed")
    assert f"saved {pm['id']} (reviewed)" in out
    saved = ok_json(team.url, "postmortem", "show", pm["id"])
    assert saved["status"] == "reviewed"
    assert saved["body"]["root_cause"] == "batch_size=512 does not fit a 16 GB GPU."
    new = [x for x in saved["body"]["lessons"] if x["text"].startswith("Run a one-batch")]
    assert len(new) == 1 and new[0]["id"].startswith("les_")
    recorded = ok_json(team.url, "show", new[0]["id"])
    assert pm["id"] in recorded["sources"] and team.fail2 in recorded["sources"]
    assert "## Root cause\n\nbatch_size=512 does not fit" in ok(team.url, "postmortem", "show",
                                                                 pm["id"])

    missing = cli(team.url, "postmortem", "edit", pm["id"], "--file", str(tmp_path / "nope.md"))
    assert missing.exit_code == 2 and "does not exist" in flat(missing.output)


def test_postmortem_edit_in_editor(team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pm = ok_json(team.url, "postmortem", "new", "--from", team.fail2)
    script = tmp_path / "editor.sh"
    script.write_text(
        "#!/bin/sh\n"
        "sed -i -e 's/^# .*/# OOM in resnet-big (edited)/' "
        "-e '/^## Lessons$/a - Check free GPU memory before launching.' \"$1\"\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", str(script))
    assert f"saved {pm['id']} (draft)" in ok(team.url, "postmortem", "edit", pm["id"])
    saved = ok_json(team.url, "postmortem", "show", pm["id"])
    assert saved["title"] == "OOM in resnet-big (edited)"
    assert any(x["text"] == "Check free GPU memory before launching." and x["id"]
               for x in saved["body"]["lessons"])

    monkeypatch.setenv("EDITOR", "false")  # the editor gave up: nothing changes
    r = cli(team.url, "postmortem", "edit", pm["id"])
    assert isinstance(r.exception, LedgerError) and "nothing was changed" in str(r.exception)
    monkeypatch.setenv("EDITOR", str(tmp_path / "no-such-editor"))
    r = cli(team.url, "postmortem", "edit", pm["id"])
    assert isinstance(r.exception, LedgerError) and "Cannot start the editor" in str(r.exception)
    assert ok_json(team.url, "postmortem", "show", pm["id"])["updated_at"] == saved["updated_at"]


def test_postmortem_edit_without_editor_is_a_clear_error(team: Team) -> None:
    pm = ok_json(team.url, "postmortem", "new", "--from", team.fail1)
    line = assert_clean_error(hs(team.url, "postmortem", "edit", pm["id"]))
    assert "$EDITOR" in line and "--file" in line


# -- metrics and export ----------------------------------------------------------------------


def test_metrics_json_matches_the_ledger(team: Team) -> None:
    for args, project in (((), None), (("-p", "vision"), "vision")):
        data = ok_json(team.url, "metrics", *args)
        expected = learning_metrics(team.ledger, project=project).to_dict()
        assert set(data) == set(expected)
        for key in set(expected) - {"until", "until_iso"}:  # "until" is "now"
            assert data[key] == pytest.approx(expected[key]), key
    vision = ok_json(team.url, "metrics", "-p", "vision")
    assert (vision["experiments"], vision["failures"], vision["lessons"]) == (3, 2, 1)
    assert vision["repeat_failures"] == 1  # the second OOM had a known lesson
    assert ok_json(team.url, "metrics", "--since", "1h")["experiments"] == 3


def test_metrics_table(team: Team) -> None:
    m = learning_metrics(team.ledger, project="vision")
    text = flat(ok(team.url, "metrics", "-p", "vision"))
    assert "Learning metrics — vision" in text
    for row in ("experiment velocity", "failure recovery time (median)", "lesson application rate",
                "repeat-failure rate", "innovation index", "learning efficiency"):
        assert row in text
    assert f"{m.learning_efficiency:.2f}" in text
    assert f"{m.repeat_failures} of {m.failures} failures had a known lesson" in text


def test_export_markdown(team: Team, tmp_path: Path) -> None:
    out = tmp_path / "pages"
    assert "wrote 5 file(s)" in ok(team.url, "export", "--md", str(out))
    exps = (team.good, team.oom1, team.oom2, team.old)
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{e}.md" for e in exps] + ["index.md"])
    index = (out / "index.md").read_text(encoding="utf-8")
    for e in exps:
        assert f"({e}.md)" in index
    assert (out / f"{team.oom2}.md").read_text(encoding="utf-8") == ok(team.url, "show", team.oom2,
                                                                        "--md")
    paths = ok_json(team.url, "export", "--md", str(tmp_path / "nlp"), "-p", "nlp")
    assert [Path(p).name for p in paths] == [f"{team.old}.md", "index.md"]
    r = cli(team.url, "export", "--md", str(out / "index.md"))
    assert r.exit_code == 2 and "is a file" in flat(r.output)


# -- run -------------------------------------------------------------------------------------

WRITE_METRICS = "import json, os; json.dump({{'acc': {acc}}}, open(os.environ['HINDSIGHT_METRICS_FILE'], 'w'))"


def test_run_propagates_exit_codes_and_judges_the_metrics_file(
    ledger: Ledger, sqlite_url: str
) -> None:
    ok_run = hs(sqlite_url, "run", "--name", "train", "-c", "acc>=0.9", "-p", "cv", "--",
                sys.executable, "-c", WRITE_METRICS.format(acc=0.93) + "; print('training done')")
    assert ok_run.returncode == 0, ok_run.stderr
    assert "training done" in ok_run.stdout  # output streams through
    assert "finished / success" in ok_run.stderr and "all criteria met" in ok_run.stderr
    crash = hs(sqlite_url, "run", "--name", "train", "-c", "acc>=0.9", "--", sys.executable, "-c",
               f"import sys; print({OOM!r}, file=sys.stderr); sys.exit(3)")
    assert crash.returncode == 3
    assert "Traceback" not in crash.stderr and "dl.gpu_oom" in crash.stderr

    new, old = ledger.experiments()
    assert (old.name, old.project, old.status, old.outcome) == ("train", "cv", "finished", "success")
    assert old.summary == {"acc": 0.93} and old.verdicts[0]["verdict"] == "met"
    assert (new.status, new.outcome, new.outcome_reason) == ("crashed", "failure", "exit code 3")
    assert ledger.failure_record(new.failure_id or "").category == "dl.gpu_oom"


def test_run_missed_criteria_is_a_failed_outcome_with_exit_0(ledger: Ledger, sqlite_url: str) -> None:
    r = cli(sqlite_url, "run", "--name", "weak", "-c", "acc>=0.9", "--quiet", "--",
            sys.executable, "-c", WRITE_METRICS.format(acc=0.5))
    assert r.exit_code == 0, r.output
    (e,) = ledger.experiments()
    assert (e.status, e.outcome) == ("finished", "failure")
    assert e.outcome_reason == "missed: acc >= 0.9 (got 0.5)"
    assert "finished / failure" in flat(r.stderr)
    strict = cli(sqlite_url, "run", "--name", "weak", "-c", "acc>=0.9", "--quiet", "--strict",
                 "--", sys.executable, "-c", WRITE_METRICS.format(acc=0.5))
    assert strict.exit_code == 1, strict.output
    passing = cli(sqlite_url, "run", "--name", "weak", "-c", "acc>=0.9", "--quiet", "--strict",
                  "--", sys.executable, "-c", WRITE_METRICS.format(acc=0.95))
    assert passing.exit_code == 0, passing.output


def test_run_bad_criterion_and_no_command_are_errors(sqlite_url: str) -> None:
    line = assert_clean_error(hs(sqlite_url, "run", "-c", "accuracy", "--", "true"))
    assert "Cannot read criterion 'accuracy'" in line
    r = cli(sqlite_url, "run", "--name", "x")
    assert r.exit_code == 2 and "Missing argument" in flat(r.output)


# -- diagnose --------------------------------------------------------------------------------


def test_diagnose_log_file_stdin_json_and_config(sqlite_url: str, tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text(OOM_LOG, encoding="utf-8")
    text = flat(ok(sqlite_url, "diagnose", str(log)))
    assert "dl.gpu_oom" in text and "GPU out of memory" in text and "try:" in text

    from_stdin = json.loads(ok(sqlite_url, "diagnose", "--json", input=OOM_LOG))
    from_dash = json.loads(ok(sqlite_url, "diagnose", "-", "--json", input=OOM_LOG))
    from_file = ok_json(sqlite_url, "diagnose", str(log))
    assert from_stdin == from_dash == from_file
    assert from_file["category"] == "dl.gpu_oom" and from_file["fingerprint"]["hash"]

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"batch_size": 512, "seed": 3}), encoding="utf-8")
    with_cfg = ok_json(sqlite_url, "diagnose", str(log), "--config", str(cfg))
    assert "batch_size=512" in with_cfg["likely_cause"]
    assert any("512 -> 256" in r for r in with_cfg["recommendations"])
    toml_cfg = tmp_path / "cfg.toml"
    toml_cfg.write_text("batch_size = 512\nseed = 3\n", encoding="utf-8")
    assert ok_json(sqlite_url, "diagnose", str(log), "--config", str(toml_cfg)) == with_cfg


def test_diagnose_text_with_brackets_and_missing_files(sqlite_url: str, tmp_path: Path) -> None:
    assert "[/]" in ok(sqlite_url, "diagnose", input="ValueError: bad [/] value [x]\n")
    r = cli(sqlite_url, "diagnose", str(tmp_path / "missing.log"))
    assert r.exit_code == 2 and "is not a file" in flat(r.output)
    r = cli(sqlite_url, "diagnose", "--config", str(tmp_path / "c.json"), input=OOM_LOG)
    assert isinstance(r.exception, ConfigError) and "does not exist" in str(r.exception)


# -- errors ----------------------------------------------------------------------------------


def test_unknown_id_is_one_clear_error_line(sqlite_url: str) -> None:
    r = hs(sqlite_url, "show", "exp_doesnotexist")
    line = assert_clean_error(r)
    assert "No record with id 'exp_doesnotexist'" in line and "hindsight ls" in line
    assert r.stderr.strip() == line  # one line, however wide the message


def test_usage_errors_exit_2_without_traceback(sqlite_url: str) -> None:
    line = assert_clean_error(hs(sqlite_url, "show"))
    assert "Missing argument" in line
    r = cli(sqlite_url, "frobnicate")
    assert r.exit_code == 2 and "No such command 'frobnicate'" in flat(r.output)


def test_corrupt_store_file(tmp_path: Path) -> None:
    db = tmp_path / "broken.db"
    db.write_bytes(b"this is not a SQLite database, just some bytes " * 20)
    line = assert_clean_error(hs(f"sqlite:///{db}", "ls"))
    assert "is not a readable hindsight database" in line and "backup" in line
    assert db.read_bytes().startswith(b"this is not a SQLite")  # left as it was


def test_unreachable_postgresql(sqlite_url: str) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/hindsight"
    line = assert_clean_error(hs(url, "ls", timeout=60))
    assert "Cannot reach the store" in line


# -- the demo --------------------------------------------------------------------------------


@dataclass
class Demo:
    url: str
    home: Path
    result: dict[str, Any]


@dataclass
class _DemoRun:
    url: str
    home: Path
    out: Path
    err: Path
    proc: subprocess.Popen[bytes] | None


@pytest.fixture(scope="module", autouse=True)
def _demo_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[_DemoRun]:
    """Start ``hindsight demo --json`` in the background when this module's first test runs.

    The demo trains real models for several seconds; the tests before the demo tests
    run meanwhile. It starts only if a selected test of this module uses ``demo``.
    """
    root = tmp_path_factory.mktemp("demo")
    run = _DemoRun(f"sqlite:///{root / 'demo.db'}", root / "home", root / "out.json",
                   root / "err.txt", None)
    wanted = any("demo" in getattr(item, "fixturenames", ()) and item.module is request.module
                 for item in request.session.items)
    if wanted:
        with run.out.open("wb") as out, run.err.open("wb") as err:
            run.proc = subprocess.Popen(
                [str(HINDSIGHT), "--store", run.url, "demo", "--json"], stdout=out, stderr=err,
                cwd=root, env=_clean_env(HINDSIGHT_HOME=str(run.home)),
            )
    yield run
    if run.proc is not None and run.proc.poll() is None:
        run.proc.kill()
        run.proc.wait()


@pytest.fixture(scope="module")
def demo(_demo_run: _DemoRun) -> Demo:
    """The demo's store and its ``--json`` output, on a fresh store, via the console script."""
    assert _demo_run.proc is not None
    code = _demo_run.proc.wait(timeout=300)
    err = _demo_run.err.read_text(encoding="utf-8")
    assert code == 0, err
    assert "Traceback" not in err
    return Demo(_demo_run.url, _demo_run.home,
                json.loads(_demo_run.out.read_text(encoding="utf-8")))


def test_demo_json(demo: Demo) -> None:
    res = demo.result
    assert set(res["experiments"]) == {
        "crash", "repeat", "diverge", "guarded", "baseline", "deep", "hybrid", "canary"
    }
    assert set(res["failures"]) == {"crash", "repeat", "diverge", "guarded", "canary", "monitor"}
    assert res["project"] == "recsys-demo"
    m = res["metrics"]
    assert (m["experiments"], m["failures"], m["lessons"]) == (8, 6, 4)
    assert m["repeat_failures"] == 1 and 0 < m["learning_efficiency"] <= 1
    path = Path(res["postmortem_path"])
    assert path.parent == demo.home / "postmortems" and path.name == f"{res['postmortem_id']}.md"
    assert path.read_text(encoding="utf-8").startswith("# deep-ranker-v2")


def test_demo_judges_the_recommenders_by_cost_and_by_slice(demo: Demo) -> None:
    models = demo.result["evaluation"]["models"]
    base, hybrid = models["cf-baseline"], models["hybrid-recommender"]
    # The baseline's misses cost most on new users; the slice search names them.
    assert base["passed"] is False and set(base["missed"]) == {"expected_cost", "recall@user=new"}
    assert base["worst_slice"]["expr"] == "user == 'new'" and base["worst_slice"]["size"] == 400
    assert base["cost_new"] > 4 * base["cost_returning"]
    assert hybrid["passed"] is True and hybrid["expected_cost"] < base["expected_cost"]
    assert hybrid["hit_rate_new"] > base["hit_rate_new"]
    for entry in (base, hybrid):
        page = Path(entry["report"])
        assert page.parent == demo.home / "reports" and page.suffix == ".html"
        report = json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))
        assert report["schema"] == "hindsight.evaluation/1"
        assert report["passed"] is entry["passed"]
    # The evaluation was logged to the experiments, so the ledger judged it as a criterion.
    shown = ok_json(demo.url, "show", demo.result["experiments"]["baseline"])
    verdicts = {v["metric"]: v["verdict"] for v in shown["verdicts"]}
    assert verdicts["recall@user=new"] == "missed" and verdicts["expected_cost"] == "missed"
    shown = ok_json(demo.url, "show", demo.result["experiments"]["hybrid"])
    assert {v["metric"]: v["verdict"] for v in shown["verdicts"]}["recall@user=new"] == "met"
    assert shown["summary"]["recall@user=new"] == pytest.approx(hybrid["hit_rate_new"])


def test_demo_repeat_surfaces_the_crash_lesson(demo: Demo) -> None:
    res = demo.result
    shown = ok_json(demo.url, "show", res["experiments"]["repeat"])
    assert shown["status"] == "crashed" and shown["failure"]["id"] == res["failures"]["repeat"]
    crash = next(s for s in shown["similar"] if s["failure"]["id"] == res["failures"]["crash"])
    assert crash["exact"] is True
    assert res["lessons"]["shapes"] in [les["id"] for les in crash["lessons"]]
    text = flat(ok(demo.url, "show", res["experiments"]["repeat"]))
    assert "dl.shape_mismatch" in text and res["lessons"]["shapes"] in text


def test_demo_guard_stops_the_long_run_with_a_diagnosis(demo: Demo) -> None:
    res = demo.result
    shown = ok_json(demo.url, "show", res["experiments"]["guarded"])
    # Stopped on purpose: the process finished, the experiment failed.
    assert (shown["status"], shown["outcome"], shown["outcome_source"]) == (
        "finished", "failure", "training")
    failure = shown["failure"]
    assert failure["id"] == res["failures"]["guarded"] and failure["source"] == "training"
    assert failure["category"] == "train.overfitting"
    ev = failure["evidence"]
    # Stopped long before the planned 30 epochs (16 steps each), on a rising validation loss.
    assert ev["stopped_at_step"] < 30 * 16 // 2
    val = ev["curves"]["val_loss"]["values"]
    assert len(val) >= 5 and val[-1] > min(val)
    text = ok(demo.url, "show", res["experiments"]["guarded"])
    assert "train.overfitting" in text
    assert any(line.strip().startswith("val_loss") and "█" in line for line in text.splitlines())


def test_demo_serves_falls_back_and_rolls_back_a_worse_canary(demo: Demo) -> None:
    res = demo.result
    serving = res["serving"]
    # The outage sent requests to the cf-baseline tier, opened the breaker, and it closed.
    assert serving["breaker_opened"] and serving["breaker_closed_again"]
    assert serving["tiers"]["hybrid"] > serving["tiers"]["cf"] > 0
    assert serving["canary_status"] == "rolled_back"
    assert "reward_rate" in serving["canary_reason"]
    shown = ok_json(demo.url, "show", res["experiments"]["canary"])
    assert shown["outcome"] == "failure" and "canary" in shown["tags"]
    assert shown["failure"]["source"] == "canary"
    assert shown["failure"]["id"] == res["failures"]["canary"]


def test_demo_monitor_catches_the_recommender_reinforcing_itself(demo: Demo) -> None:
    mon = demo.result["monitor"]
    assert mon["gini_last"] > mon["gini_first"]
    rules = [a["rule"] for a in mon["alerts"]]
    assert rules == ["exposure-concentration", "treated-behind-holdout"]
    assert mon["incident"] == demo.result["failures"]["monitor"] and mon["postmortem"]
    shown = ok_json(demo.url, "show", mon["incident"])
    assert shown["failure"]["source"] == "monitor" and shown["failure"]["project"] == "recsys-demo"
    pms = {p["id"] for p in ok_json(demo.url, "postmortem", "list")}
    assert mon["postmortem"] in pms


def test_demo_store_through_the_read_commands(demo: Demo) -> None:
    res = demo.result
    failed = ok_json(demo.url, "ls", "--failed", "-p", "recsys-demo")
    assert {e["id"] for e in failed} == {
        res["experiments"][k] for k in ("crash", "repeat", "diverge", "guarded", "canary")
    }
    assert ok_json(demo.url, "similar", res["failures"]["repeat"]) == ok_json(
        demo.url, "similar", res["experiments"]["repeat"])
    assert res["postmortem_id"] in {p["id"] for p in ok_json(demo.url, "postmortem", "list")}
    md = ok(demo.url, "postmortem", "show", res["postmortem_id"])
    assert md == Path(res["postmortem_path"]).read_text(encoding="utf-8")
    ledger = Ledger(Settings(home=demo.home, store=demo.url))
    try:
        expected = learning_metrics(ledger, project="recsys-demo").to_dict()
    finally:
        ledger.close()
    got = ok_json(demo.url, "metrics", "-p", "recsys-demo")
    assert {k: got[k] for k in ("experiments", "failures", "lessons", "lessons_applied",
                                "repeat_failures", "innovative_experiments")} == {
        k: expected[k] for k in ("experiments", "failures", "lessons", "lessons_applied",
                                 "repeat_failures", "innovative_experiments")}
    applied = {les["id"]: les for les in ok_json(demo.url, "lessons", "list")}
    assert res["experiments"]["hybrid"] in applied[res["lessons"]["shapes"]]["applied_by"]


def test_sparkline_draws_the_curve_and_marks_non_finite_points() -> None:
    from hindsight.cli.common import sparkline

    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([3.0, 3.0]) == "▁▁"
    assert sparkline([1.0, float("nan"), 2.0]) == "▁x█"
    assert len(sparkline(list(range(1000)), width=20)) == 20
    assert sparkline([]) == ""
