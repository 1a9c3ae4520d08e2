"""Masking and fingerprints: the same failure groups together, different ones do not."""

from __future__ import annotations

import json
import re
import traceback

import pytest

from hindsight.diagnose import Evidence, Fingerprint, fingerprint, mask
from hindsight.errors import DiagnosisError


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("step 1200 loss 0.3451 lr 1e-4", "step <n> loss <n> lr <n>"),
        ("object at 0x7f3a2b1c0d90", "object at <hex>"),
        (
            "Tried to allocate 20.00 MiB; 7.8 GiB total; 512 bytes",
            "Tried to allocate <size>; <size> total; <size>",
        ),
        ("No such file: '/data/run_7/train.csv'", "No such file: '<path>'"),
        ("open data/train.csv failed", "open <path> failed"),
        ("C:\\Users\\ana\\data.csv not found", "<path> not found"),
        ("run 123e4567-e89b-12d3-a456-426614174000 failed", "run <id> failed"),
        ("commit 3f2a9c81d0e4b5a6c7d8 broke it", "commit <id> broke it"),
        ("experiment exp_4f3a9b21 crashed", "experiment <id> crashed"),
        ("shape [32, 128] vs (64, 3, 224, 224)", "shape <shape> vs <shape>"),
        ("got torch.Size([8, 10]) and (None, 28, 28)", "got <shape> and <shape>"),
        ("cannot be multiplied (32x512 and 256x10)", "cannot be multiplied (<shape> and <shape>)"),
        ("connect to 10.0.0.12:29500 refused", "connect to <addr> refused"),
        ("at 2024-03-01T12:00:01.123Z retry", "at <time> retry"),
        ("Jan  5 12:00:01 host kernel: oom", "<time> host kernel: oom"),
        ("fetch https://hub.example.com/a/b.bin timed out", "fetch <url> timed out"),
        ("  lots \n of\t space  ", "lots of space"),
    ],
)
def test_mask_replaces_run_specific_values(text: str, masked: str) -> None:
    assert mask(text) == masked


@pytest.mark.parametrize(
    "text",
    ["KeyError: 'user_id'", "expected float32 but got bfloat16", "conv2d and ResNet50 on cuda"],
)
def test_mask_keeps_words_and_quoted_names(text: str) -> None:
    assert mask(text) == text


def _load(path: str, rows: int) -> None:
    raise ValueError(f"bad shape (1, {rows}) at row {rows * 7} in {path}")


def _other_loader(path: str, rows: int) -> None:
    raise ValueError(f"bad shape (1, {rows}) at row {rows * 7} in {path}")


def _caught(fn: object, *args: object) -> Evidence:
    try:
        fn(*args)  # type: ignore[operator]
    except Exception as exc:
        return Evidence.from_exception(exc)
    raise AssertionError("expected an exception")


def _missing(key: str) -> None:
    print({"a": 1}[key])


def test_fingerprint_ignores_numbers_paths_and_shapes() -> None:
    a = fingerprint(_caught(_load, "/data/a.csv", 3))
    b = fingerprint(_caught(_load, "/mnt/other/b.csv", 128))
    assert a.hash == b.hash
    assert a.masked_message == "bad shape <shape> at row <n> in <path>"
    assert a.frames[-1] == "test_fingerprint.py:_load"


def test_fingerprint_differs_by_user_frame_type_and_key() -> None:
    base = fingerprint(_caught(_load, "/data/a.csv", 3))
    other_frame = fingerprint(_caught(_other_loader, "/data/a.csv", 3))
    assert base.hash != other_frame.hash

    user_id = fingerprint(_caught(_missing, "user_id"))
    item_id = fingerprint(_caught(_missing, "item_id"))
    assert user_id.hash != item_id.hash

    as_type = fingerprint(Evidence("TypeError", base.masked_message, _caught(_load, "x", 1).frames))
    assert as_type.hash != base.hash


def test_fingerprint_ignores_line_numbers() -> None:
    ev = _caught(_missing, "user_id")
    moved = Evidence(
        ev.exc_type,
        ev.message,
        tuple(
            type(f)(f.filename, f.lineno + 40, f.function, f.line, f.in_user_code)
            for f in ev.frames
        ),
    )
    assert fingerprint(ev).hash == fingerprint(moved).hash


def test_live_exception_and_its_printed_traceback_share_a_fingerprint() -> None:
    try:
        _missing("user_id")
    except KeyError as exc:
        live = fingerprint(Evidence.from_exception(exc))
        printed = fingerprint(Evidence.from_text("noise\n" + traceback.format_exc()))
    assert live.hash == printed.hash


def test_fingerprint_shape_and_tokens() -> None:
    fp = fingerprint(_caught(_missing, "user_id"), "code.error")
    assert re.fullmatch(r"[0-9a-f]{16}", fp.hash)
    assert fp.exc_type == "KeyError"
    assert fp.tokens[0] == "code.error"
    assert {"keyerror", "key", "error", "user_id", "test_fingerprint", "missing"} <= set(fp.tokens)
    assert all(t == t.lower() and " " not in t for t in fp.tokens)
    assert len(fp.tokens) == len(set(fp.tokens))
    placeholders = fingerprint(Evidence("ValueError", "bad value 3 at /tmp/a.csv"))
    assert not {"n", "path"} & set(placeholders.tokens)


def test_log_only_fingerprint_uses_masked_error_lines() -> None:
    log_a = "2024-01-01 10:00:00 INFO start\n2024-01-01 10:05:00 ERROR worker 3 failed: exit 137\n"
    log_b = "2024-02-02 11:11:11 INFO start\n2024-02-02 11:12:00 ERROR worker 12 failed: exit 137\n"
    log_c = "2024-02-02 11:11:11 INFO start\n2024-02-02 11:12:00 ERROR cannot reach database\n"
    a, b, c = (fingerprint(Evidence.from_text(t)) for t in (log_a, log_b, log_c))
    assert a.hash == b.hash
    assert a.hash != c.hash
    assert a.exc_type == "" and a.frames == ()
    assert a.masked_message == "<time> ERROR worker <n> failed: exit <n>"


def test_fingerprint_dict_round_trip_and_bad_input() -> None:
    fp = fingerprint(_caught(_missing, "user_id"), "code.error")
    assert Fingerprint.from_dict(json.loads(json.dumps(fp.to_dict()))) == fp
    with pytest.raises(DiagnosisError):
        Fingerprint.from_dict({"tokens": []})
    with pytest.raises(DiagnosisError, match="needs an Evidence"):
        fingerprint("KeyError: 'x'")  # type: ignore[arg-type]


def test_silent_deaths_differ_by_exit_code() -> None:
    killed = fingerprint(Evidence.from_text("", exit_code=137))
    stopped = fingerprint(Evidence.from_text("", exit_code=143))
    assert killed.masked_message == "exit code 137"
    assert killed.hash != stopped.hash
