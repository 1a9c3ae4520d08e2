"""Evidence from live exceptions and from log text."""

from __future__ import annotations

import json
import traceback

import pytest

from hindsight.diagnose import Evidence, Frame
from hindsight.diagnose.evidence import LOG_TAIL_LINES, MAX_MESSAGE_CHARS, signal_of, tail
from hindsight.diagnose.frames import is_user_path, qualified_name
from hindsight.diagnose.logtext import error_lines, strip_frames
from hindsight.errors import DiagnosisError

CHAINED_TEXT = """\
Epoch 1/10
Traceback (most recent call last):
  File "/home/ana/proj/data.py", line 14, in load_row
    return rows[key]
           ~~~~^^^^^
KeyError: 'label'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/home/ana/proj/train.py", line 40, in <module>
    main()
  File "/home/ana/proj/train.py", line 31, in main
    batch = load_row(rows, "label")
  File "/opt/conda/lib/python3.10/site-packages/torch/utils/data/dataloader.py", line 630, in __next__
    data = self._next_data()
  File "/usr/lib/python3.10/threading.py", line 10, in run
    self._target()
RuntimeError: could not build batch
  while reading shard 3
"""


def _raise_zero() -> None:
    print(1 / 0)


def test_from_exception_reads_type_message_and_frames() -> None:
    try:
        _raise_zero()
    except ZeroDivisionError as exc:
        ev = Evidence.from_exception(exc)
    assert ev.exc_type == "ZeroDivisionError"
    assert ev.message == "division by zero"
    assert [f.function for f in ev.frames][-1] == "_raise_zero"
    assert ev.frames[0].function == "test_from_exception_reads_type_message_and_frames"
    assert all(f.in_user_code for f in ev.frames)
    assert ev.frames[-1].filename.endswith("test_evidence.py")
    assert ev.frames[-1].lineno > 0
    assert "1 / 0" in ev.frames[-1].line
    assert ev.log_tail == "" and ev.exit_code is None and ev.chain == ()


def test_from_exception_includes_causes_contexts_and_notes() -> None:
    try:
        try:
            empty: dict[str, int] = {}
            print(empty["user_id"])
        except KeyError as inner:
            raise RuntimeError("feature build failed") from inner
    except RuntimeError as exc:
        exc.add_note("while building features for day 3")
        ev = Evidence.from_exception(exc)
    assert ev.exc_type == "RuntimeError"
    assert "KeyError: 'user_id'" in ev.chain
    assert "while building features for day 3" in ev.chain
    assert "KeyError: 'user_id'" in ev.text()

    try:
        try:
            int("x")
        except ValueError:
            raise LookupError("nothing found") from None
    except LookupError as exc:
        suppressed = Evidence.from_exception(exc)
    assert suppressed.chain == ()


def test_from_exception_qualifies_library_exception_types() -> None:
    try:
        json.loads("{broken")
    except json.JSONDecodeError as exc:
        ev = Evidence.from_exception(exc)
    assert ev.exc_type == "json.JSONDecodeError"
    assert any(not f.in_user_code for f in ev.frames)  # json's own frames are stdlib


def test_from_exception_system_exit_code_and_bad_input() -> None:
    ev = Evidence.from_exception(SystemExit(2))
    assert ev.exit_code == 2 and ev.exc_type == "SystemExit"
    with pytest.raises(DiagnosisError, match="needs an exception"):
        Evidence.from_exception("not an exception")  # type: ignore[arg-type]


def test_from_text_parses_the_last_traceback_with_its_chain() -> None:
    ev = Evidence.from_text(CHAINED_TEXT)
    assert ev.exc_type == "RuntimeError"
    assert ev.message == "could not build batch\n  while reading shard 3"
    assert [f.function for f in ev.frames] == ["<module>", "main", "__next__", "run"]
    assert [f.lineno for f in ev.frames] == [40, 31, 630, 10]
    assert ev.frames[1].line == 'batch = load_row(rows, "label")'
    assert [f.in_user_code for f in ev.frames] == [True, True, False, False]
    assert ev.chain == ("KeyError: 'label'",)
    assert ev.log_tail.startswith("Epoch 1/10")


def test_from_text_follows_during_handling_chains_and_stops_at_unrelated_ones() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "a.py", line 1, in <module>\n'
        "ValueError: first, unrelated\n"
        "\nretrying...\n"
        "Traceback (most recent call last):\n"
        '  File "a.py", line 2, in <module>\n'
        "OSError: [Errno 5] Input/output error\n"
        "\nDuring handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n"
        '  File "a.py", line 3, in <module>\n'
        "MemoryError\n"
    )
    ev = Evidence.from_text(text)
    assert ev.exc_type == "MemoryError"
    assert ev.message == ""
    assert ev.chain == ("OSError: [Errno 5] Input/output error",)


def test_from_text_strips_launcher_prefixes_and_qualifies_types() -> None:
    text = (
        "[rank1]: Traceback (most recent call last):\n"
        '[rank1]:   File "/workspace/train.py", line 70, in main\n'
        "[rank1]:     out = model(x)\n"
        "[rank1]: torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB.\n"
    )
    ev = Evidence.from_text(text)
    assert ev.exc_type == "torch.OutOfMemoryError"
    assert ev.message.startswith("CUDA out of memory")
    assert ev.frames == (Frame("/workspace/train.py", 70, "main", "out = model(x)", True),)


def test_from_text_does_not_let_a_cut_off_traceback_swallow_the_next() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "worker.py", line 9, in run\n'
        "    step()\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "launcher.py", line 3, in <module>\n'
        "SystemExit: 1\n"
    )
    ev = Evidence.from_text(text)
    assert ev.exc_type == "SystemExit"
    assert [f.filename for f in ev.frames] == ["launcher.py"]


def test_from_text_without_traceback_keeps_tail_and_picks_the_error_line() -> None:
    lines = [f"INFO step {i} loss=0.{i:03d}" for i in range(100)]
    lines += [
        "WARNING: deprecated option used",
        "srun: error: node-3: task 0: Out Of Memory",
        "INFO cleaning up",
    ]
    ev = Evidence.from_text("\n".join(lines), exit_code=137)
    assert ev.exc_type == "" and ev.frames == ()
    assert ev.message == "srun: error: node-3: task 0: Out Of Memory"
    assert len(ev.log_tail.split("\n")) == LOG_TAIL_LINES
    assert ev.log_tail.endswith("INFO cleaning up")
    assert ev.exit_code == 137 and ev.signal == 9


def test_from_text_accepts_bytes_with_bad_utf8_and_rejects_other_types() -> None:
    ev = Evidence.from_text(b"\xff\xfe garbage\nERROR: disk failed\n")
    assert ev.message == "ERROR: disk failed"
    with pytest.raises(DiagnosisError, match="needs log text"):
        Evidence.from_text(42)  # type: ignore[arg-type]


def test_text_traceback_round_trips_a_real_one() -> None:
    try:
        _raise_zero()
    except ZeroDivisionError as exc:
        live = Evidence.from_exception(exc)
        printed = Evidence.from_text(traceback.format_exc())
    assert printed.exc_type == live.exc_type
    assert printed.message == live.message
    assert [(f.function, f.lineno) for f in printed.frames] == [
        (f.function, f.lineno) for f in live.frames
    ]


@pytest.mark.parametrize(
    ("code", "signal"),
    [(137, 9), (143, 15), (-9, 9), (-15, 15), (1, None), (0, None), (None, None)],
)
def test_signal_of_exit_codes(code: int | None, signal: int | None) -> None:
    assert signal_of(code) == signal
    assert Evidence.from_text("", exit_code=code).signal == signal


@pytest.mark.parametrize(
    ("path", "user"),
    [
        ("/home/ana/proj/train.py", True),
        ("train.py", True),
        ("C:\\Users\\ana\\proj\\train.py", True),
        ("/venv/lib/python3.11/site-packages/torch/nn/modules/module.py", False),
        ("/usr/lib/python3/dist-packages/yaml/__init__.py", False),
        ("/usr/lib/python3.10/threading.py", False),
        ("C:\\Python311\\Lib\\json\\decoder.py", False),
        ("<frozen importlib._bootstrap>", False),
        ("<string>", False),
        ("", False),
    ],
)
def test_is_user_path(path: str, user: bool) -> None:
    assert is_user_path(path) is user


def test_qualified_name() -> None:
    class LocalError(Exception):
        pass

    assert qualified_name(ValueError) == "ValueError"
    assert qualified_name(json.JSONDecodeError) == "json.JSONDecodeError"
    assert qualified_name(LocalError).endswith("LocalError")


def test_tail_limits_lines_and_chars() -> None:
    text = "\n".join(f"line {i}" for i in range(500))
    assert tail(text, max_lines=3) == "line 497\nline 498\nline 499"
    short = tail(text, max_lines=500, max_chars=30)
    assert len(short) <= 30 and short.endswith("line 499")
    assert not short.startswith("ne")  # cut on a line boundary
    assert tail("one line") == "one line"
    with pytest.raises(DiagnosisError):
        tail(text, max_lines=0)


def test_error_lines_prefers_errors_over_info_and_warnings() -> None:
    text = "INFO ok\nWARNING: slow\nRuntimeError: boom\nINFO bye"
    assert error_lines(text, 1) == ["RuntimeError: boom"]
    assert error_lines("all good\nnothing here") == []


def test_strip_frames_removes_frame_and_source_lines() -> None:
    stripped = strip_frames(CHAINED_TEXT)
    assert 'File "' not in stripped
    assert "load_row(rows" not in stripped
    assert "RuntimeError: could not build batch" in stripped


def test_evidence_dict_round_trip_is_json_safe() -> None:
    ev = Evidence.from_text(CHAINED_TEXT, exit_code=1)
    data = json.loads(json.dumps(ev.to_dict()))
    assert Evidence.from_dict(data) == ev
    with pytest.raises(DiagnosisError):
        Evidence.from_dict({"frames": [{"filename": "a.py"}]})
    with pytest.raises(DiagnosisError):
        Evidence.from_dict([])  # type: ignore[arg-type]


def test_headline_and_user_frames() -> None:
    ev = Evidence.from_text(CHAINED_TEXT)
    assert ev.headline == "RuntimeError: could not build batch"
    assert [f.function for f in ev.user_frames] == ["<module>", "main"]
    assert Evidence(message="just text").headline == "just text"


def test_huge_messages_are_clipped() -> None:
    ev = Evidence.from_exception(ValueError("x" * (MAX_MESSAGE_CHARS * 2)))
    assert len(ev.message) == MAX_MESSAGE_CHARS and ev.message.endswith("...")
