"""diagnose(): real exceptions and logs in, a category, a specific cause and concrete advice out."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

import pytest

from hindsight.diagnose import CATEGORIES, Diagnosis, Evidence, diagnose
from hindsight.errors import DiagnosisError


def _caught(fn: object, *args: object) -> BaseException:
    try:
        fn(*args)  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("expected an exception")


def _divide(a: int, b: int) -> float:
    return a / b


def _recurse(n: int) -> int:
    return _recurse(n + 1)


# --- real exceptions -------------------------------------------------------------


def test_zero_division_is_a_code_error_pointing_at_the_user_frame() -> None:
    d = diagnose(_caught(_divide, 1, 0))
    assert d.category == "code.error" and d.group == "code"
    assert d.exc_type == "ZeroDivisionError" and d.message == "division by zero"
    assert "_divide()" in d.likely_cause and "test_diagnose.py" in d.likely_cause
    assert any("in _divide()" in r for r in d.recommendations)


def test_dict_key_error_and_recursion_are_code_errors() -> None:
    assert diagnose(_caught(lambda: {"a": 1}["user_id"])).category == "code.error"
    assert diagnose(_caught(_recurse, 0)).category == "code.error"


def test_missing_file_is_a_path_problem(tmp_path: Path) -> None:
    missing = tmp_path / "data" / "train.csv"
    d = diagnose(_caught(open, missing))
    assert d.category == "env.path"
    assert str(missing) in d.likely_cause
    assert any(str(missing) in r for r in d.recommendations)


def test_missing_module_is_a_dependency_problem() -> None:
    def load() -> None:
        import hindsight_no_such_module  # noqa: F401

    d = diagnose(_caught(load))
    assert d.category == "env.dependency"
    assert "'hindsight_no_such_module'" in d.likely_cause
    assert "pip install hindsight-no-such-module" in d.recommendations[0]


def test_environment_variable_lookup_is_a_config_problem() -> None:
    d = diagnose(_caught(lambda: os.environ["HINDSIGHT_TEST_SURELY_UNSET"]))
    assert d.category == "env.config"
    assert "HINDSIGHT_TEST_SURELY_UNSET" in d.likely_cause


def test_memory_error_and_bad_float_conversion() -> None:
    assert diagnose(MemoryError()).category == "dl.cpu_oom"
    d = diagnose(_caught(float, "abc"))
    assert d.category == "data.error"
    assert "'abc'" in d.likely_cause


def test_numpy_shape_errors_are_shape_mismatches() -> None:
    np = pytest.importorskip("numpy")
    broadcast = diagnose(_caught(lambda: np.ones((3, 4)) + np.ones((5,))))
    assert broadcast.category == "dl.shape_mismatch"
    matmul = diagnose(_caught(lambda: np.ones((3, 4)) @ np.ones((5, 2))))
    assert matmul.category == "dl.shape_mismatch"
    assert broadcast.confidence > 0.5


def test_pandas_missing_column_is_a_data_error() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"item_id": [1, 2]})
    d = diagnose(_caught(lambda: frame["user_id"]))
    assert d.category == "data.error"
    assert "'user_id'" in d.likely_cause
    assert any("df.columns" in r for r in d.recommendations)


# --- specific messages beat generic exception types ------------------------------


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "dl.gpu_oom"),
        (ValueError("Input contains NaN, infinity or a value too large for dtype"), "data.error"),
        (
            RuntimeError("mat1 and mat2 shapes cannot be multiplied (32x512 and 256x10)"),
            "dl.shape_mismatch",
        ),
        (OSError(28, "No space left on device"), "infra.disk_full"),
        (
            RuntimeError("Expected all tensors to be on the same device, cuda:0 and cpu"),
            "dl.api_misuse",
        ),
        (
            RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn"),
            "dl.api_misuse",
        ),
        (ConnectionResetError(104, "Connection reset by peer"), "infra.network"),
        (RuntimeError("No CUDA GPUs are available"), "infra.gpu_driver"),
        (
            RuntimeError("NCCL error in: ProcessGroupNCCL.cpp:1275, unhandled system error"),
            "infra.distributed",
        ),
        (KeyboardInterrupt(), "infra.preemption"),
        (
            ImportError("numpy.core.multiarray failed to import: undefined symbol: PyFoo"),
            "env.dependency",
        ),
        (ValueError("Invalid learning rate: -0.1"), "env.config"),
    ],
)
def test_message_rules(exc: BaseException, category: str) -> None:
    d = diagnose(exc)
    assert d.category == category
    assert 0.0 < d.confidence <= 1.0
    assert d.evidence


def test_specific_message_is_more_confident_than_a_bare_type() -> None:
    specific = diagnose(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    bare = diagnose(ValueError("something odd"))
    assert specific.confidence > 0.7 > 0.4 > bare.confidence


# --- logs and exit codes ---------------------------------------------------------


def test_killed_with_exit_137_is_host_oom() -> None:
    d = diagnose("Epoch 3: 45%|####5     | 450/1000 [01:10<01:30]\nKilled\n", exit_code=137)
    assert d.category == "dl.cpu_oom"
    assert "exit 137" in d.likely_cause and "OOM killer" in d.likely_cause


def test_exit_143_is_preemption_and_slurm_time_limit_too() -> None:
    assert diagnose("training step 900", exit_code=143).category == "infra.preemption"
    slurm = "slurmstepd: error: *** JOB 1234 ON gpu-7 CANCELLED AT 2024-03-01T10:00:00 DUE TO TIME LIMIT ***"
    d = diagnose(slurm)
    assert d.category == "infra.preemption"
    assert "time limit" in d.likely_cause


DEVICE_ASSERT = """\
/pytorch/aten/src/ATen/native/cuda/Loss.cu:242: nll_loss_forward_reduce_cuda_kernel_2d: block: [0,0,0], thread: [5,0,0] Assertion `t >= 0 && t < n_classes` failed.
Traceback (most recent call last):
  File "/work/train.py", line 52, in <module>
    loss.backward()
RuntimeError: CUDA error: device-side assert triggered
CUDA kernel errors might be asynchronously reported at some other API call.
"""


def test_device_side_assert_is_data_when_the_label_assertion_shows() -> None:
    assert diagnose(DEVICE_ASSERT).category == "data.error"
    without = DEVICE_ASSERT.split("\n", 1)[1]
    assert diagnose(without).category == "infra.gpu_driver"


def test_nccl_watchdog_timeout_is_distributed_with_the_op_in_the_cause() -> None:
    log = (
        "[E ProcessGroupNCCL.cpp:475] [Rank 3] Watchdog caught collective operation timeout: "
        "WorkNCCL(SeqNum=1234, OpType=ALLREDUCE, Timeout(ms)=1800000) ran for 1800435 ms"
    )
    d = diagnose(log)
    assert d.category == "infra.distributed"
    assert "ALLREDUCE" in d.likely_cause and "1800s" in d.likely_cause


def test_nothing_recognisable_is_unknown_with_zero_confidence() -> None:
    d = diagnose("all steps completed\nbye\n")
    assert d.category == "unknown" and d.confidence == 0.0
    assert d.recommendations == CATEGORIES["unknown"].recommendations


def test_bytes_logs_are_decoded_with_replacement() -> None:
    d = diagnose(b"\xff\xfe\nOSError: [Errno 28] No space left on device: '/ckpt/step_9.pt'\n")
    assert d.category == "infra.disk_full"
    assert "/ckpt/step_9.pt" in d.likely_cause


# --- config makes the advice concrete --------------------------------------------


def test_gpu_oom_advice_uses_the_batch_size() -> None:
    d = diagnose(
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        {"data": {"batch_size": 512}, "seed": 1},
    )
    assert "2.00 GiB" in d.likely_cause and "data.batch_size=512" in d.likely_cause
    assert d.recommendations[0].startswith("Halve data.batch_size (512 -> 256)")
    assert "gradient accumulation" in d.recommendations[0]


def test_nan_advice_lowers_the_learning_rate_and_adds_clipping() -> None:
    d = diagnose("step 300 | loss: nan", {"learning_rate": 0.5, "seed": 3})
    assert d.category == "dl.nan_divergence"
    assert "learning_rate=0.5" in d.likely_cause
    assert d.recommendations[0].startswith("Lower learning_rate (0.5 -> 0.05)")
    assert any("gradient clipping" in r for r in d.recommendations)


def test_config_issue_fixes_are_included() -> None:
    d = diagnose(_caught(_divide, 1, 0), {"dropout": 1.0, "batch_size": 64, "n_train": 32})
    keys = {i.key for i in d.config_issues}
    assert {"dropout", "batch_size", "seed"} <= keys
    assert "Set dropout in [0, 1), e.g. 0.1." in d.recommendations
    assert any("at most 32" in r for r in d.recommendations)
    assert len(d.recommendations) <= 8


def test_config_may_be_a_namespace_or_a_dataclass() -> None:
    @dataclasses.dataclass
    class Args:
        lr: float = -1.0

    for config in (argparse.Namespace(lr=-1.0), Args()):
        d = diagnose("ValueError: boom", config)  # type: ignore[arg-type]
        assert any(i.key == "lr" and i.severity == "error" for i in d.config_issues)


# --- inputs, output shape, round trip --------------------------------------------


@pytest.mark.parametrize("bad", [None, 42, 3.5, object(), ["RuntimeError: x"]])
def test_unreadable_sources_raise_a_helpful_error(bad: object) -> None:
    with pytest.raises(DiagnosisError, match="needs an exception, an Evidence or log text"):
        diagnose(bad)  # type: ignore[arg-type]


def test_bad_config_and_exit_code_raise() -> None:
    with pytest.raises(DiagnosisError, match="config must be a mapping"):
        diagnose("x", ["lr", 1])  # type: ignore[arg-type]
    with pytest.raises(DiagnosisError, match="exit_code"):
        diagnose("x", exit_code="137")  # type: ignore[arg-type]


def test_evidence_source_gets_the_exit_code() -> None:
    d = diagnose(Evidence(message="Killed"), exit_code=137)
    assert d.category == "dl.cpu_oom"


def test_diagnosis_is_frozen_and_round_trips_through_json() -> None:
    d = diagnose(_caught(_divide, 1, 0), {"lr": -1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.category = "unknown"  # type: ignore[misc]
    data = json.loads(json.dumps(d.to_dict()))
    assert data["schema_version"] == 1
    assert Diagnosis.from_dict(data) == d
    assert d.fingerprint.tokens[0] == "code.error"
    assert d.summary.startswith("Bug in the code (")


def test_from_dict_rejects_bad_input() -> None:
    good = diagnose("OSError: [Errno 28] No space left on device").to_dict()
    with pytest.raises(DiagnosisError, match="needs the key"):
        Diagnosis.from_dict({k: v for k, v in good.items() if k != "fingerprint"})
    with pytest.raises(DiagnosisError, match="Unknown failure category"):
        Diagnosis.from_dict({**good, "category": "nope"})
    with pytest.raises(DiagnosisError, match="schema version"):
        Diagnosis.from_dict({**good, "schema_version": 99})
    with pytest.raises(DiagnosisError):
        Diagnosis.from_dict({**good, "confidence": "high"})
    with pytest.raises(DiagnosisError):
        Diagnosis.from_dict("not a dict")  # type: ignore[arg-type]


def test_same_failure_twice_has_one_fingerprint() -> None:
    a = diagnose(_caught(_divide, 1, 0))
    b = diagnose(_caught(_divide, 7, 0))
    c = diagnose(_caught(lambda: {"a": 1}["b"]))
    assert a.fingerprint.hash == b.fingerprint.hash != c.fingerprint.hash


TORCHRUN = """\
[rank1]: Traceback (most recent call last):
[rank1]:   File "/workspace/train.py", line 70, in main
[rank1]:     out = model(x)
[rank1]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB.
E0301 10:00:00.000000 140 torch/distributed/elastic/multiprocessing/api.py:833] failed
Traceback (most recent call last):
  File "/usr/local/bin/torchrun", line 8, in <module>
    sys.exit(main())
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
train.py FAILED
Root Cause (first observed failure):
  rank      : 1 (local_rank: 1)
  exitcode  : 1 (pid: 141)
============================================================
"""


def test_elastic_wrapper_defers_to_the_childs_own_error() -> None:
    assert diagnose(TORCHRUN).category == "dl.gpu_oom"
    killed = TORCHRUN.split("E0301")[1].replace("exitcode  : 1", "exitcode  : -9")
    assert diagnose(killed).category == "dl.cpu_oom"
    plain = TORCHRUN.split("E0301")[1]
    assert diagnose(plain).category == "infra.distributed"


def test_shape_cause_names_the_sizes_and_the_config_value_behind_them() -> None:
    import numpy as np

    try:
        np.ones((3, 128)) @ np.ones((96, 2))
    except ValueError as exc:
        d = diagnose(exc, {"embedding_dim": 64, "seed": 7})
    assert d.category == "dl.shape_mismatch"
    assert "size 96 where 128 was expected" in d.likely_cause
    assert "128 is 2 x embedding_dim (64)" in d.likely_cause
    plain = diagnose("RuntimeError: mat1 and mat2 shapes cannot be multiplied (32x96 and 128x10)",
                     {"hidden": 96})
    assert "expects 128 input features but received 96" in plain.likely_cause
    assert "96 is hidden=96" in plain.likely_cause
