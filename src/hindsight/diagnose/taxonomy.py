"""The failure taxonomy: why ML jobs fail, as stable category ids with default advice.

The categories follow what empirical studies of real deep-learning job failures found
to be the common root causes, merged to a size that a rules engine can tell apart:

- Ru Zhang, Wencong Xiao, Hongyu Zhang, Yu Liu, Haoxiang Lin, Mao Yang. "An Empirical
  Study on Program Failures of Deep Learning Jobs". ICSE 2020. 4960 failed jobs on
  Microsoft's Philly cluster; failures split into execution environment (paths,
  libraries, permissions), data, deep-learning specific (GPU out of memory, shapes,
  framework API misuse, NaN loss) and general code errors.
- Md Johirul Islam, Giang Nguyen, Rangeet Pan, Hridesh Rajan. "A Comprehensive Study
  on Deep Learning Bug Characteristics". ESEC/FSE 2019. Bugs in Caffe, Keras,
  TensorFlow, Theano and Torch programs: API misuse, data flow, structural bugs,
  crashes from shape and type mismatches.
- Myeongjae Jeon, Shivaram Venkataraman, Amar Phanishayee, Junjie Qian, Wencong Xiao,
  Fan Yang. "Analysis of Large-Scale Multi-Tenant GPU Clusters for DNN Training
  Workloads". USENIX ATC 2019. Job failures on Philly by cause: user errors
  (syntax, paths, configuration) fail fast; infrastructure failures cost the most GPU time.
- Qinghao Hu et al. "Characterization of Large Language Model Development in the
  Datacenter". NSDI 2024. At large-model scale, infrastructure failures dominate
  (NCCL and other collective-communication errors, GPU and driver faults, network,
  storage), alongside framework and script errors.

The ``train.*`` group holds runs that did not crash but were doomed: the training guard
(:mod:`hindsight.training`) stopped them on a symptom. Its split follows the symptom
families of Zhang et al., "AUTOTRAINER: An Automatic DNN Training Problem Detection and
Repair System", ICSE 2021 (vanishing / exploding gradients, dying ReLU, oscillating
loss, slow convergence) and the training-problem classes of DeepDiagnosis
(Wardat et al., ICSE 2022). A loss that became NaN or exploded stays ``dl.nan_divergence``
whether the guard or a crash saw it.

Categories are data (:data:`CATEGORIES`), not code branches, so the ledger can store
the id and later versions can reword titles and advice without touching the classifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, cast

from hindsight.errors import DiagnosisError

__all__ = ["CATEGORIES", "GROUPS", "Category", "CategoryInfo", "Group", "category_info"]

Group = Literal["env", "code", "data", "dl", "train", "infra", "unknown"]

GROUPS: tuple[Group, ...] = ("env", "code", "data", "dl", "train", "infra", "unknown")


class Category(StrEnum):
    """Stable ids of failure categories; ``str(Category.DL_GPU_OOM) == "dl.gpu_oom"``."""

    ENV_DEPENDENCY = "env.dependency"
    ENV_PATH = "env.path"
    ENV_CONFIG = "env.config"
    CODE_ERROR = "code.error"
    DATA_ERROR = "data.error"
    DL_GPU_OOM = "dl.gpu_oom"
    DL_CPU_OOM = "dl.cpu_oom"
    DL_SHAPE_MISMATCH = "dl.shape_mismatch"
    DL_NAN_DIVERGENCE = "dl.nan_divergence"
    DL_API_MISUSE = "dl.api_misuse"
    TRAIN_NO_LEARNING = "train.no_learning"
    TRAIN_OVERFITTING = "train.overfitting"
    TRAIN_UNSTABLE = "train.unstable"
    TRAIN_GRADIENT_FLOW = "train.gradient_flow"
    TRAIN_RESOURCES = "train.resources"
    INFRA_DISK_FULL = "infra.disk_full"
    INFRA_NETWORK = "infra.network"
    INFRA_GPU_DRIVER = "infra.gpu_driver"
    INFRA_DISTRIBUTED = "infra.distributed"
    INFRA_PREEMPTION = "infra.preemption"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    """What a category means and what to do about it by default.

    >>> CATEGORIES["dl.gpu_oom"].group
    'dl'
    """

    id: Category
    group: Group
    title: str
    description: str
    likely_cause: str
    recommendations: tuple[str, ...]


def _info(
    cat: Category, title: str, description: str, likely_cause: str, *recs: str
) -> CategoryInfo:
    group = cast(Group, cat.value.split(".", 1)[0])
    return CategoryInfo(cat, group, title, description, likely_cause, tuple(recs))


_ALL = (
    _info(
        Category.ENV_DEPENDENCY,
        "Missing or incompatible dependency",
        "A package, shared library or toolkit the job imports is absent, or its installed "
        "version does not match what the code or another binary was built against.",
        "The environment the job ran in lacks a package, or has a version that does not "
        "match the code or the compiled extensions.",
        "Install the missing package into the job's environment (the one `python -m pip` "
        "sees), not only on your workstation.",
        "Pin versions in a lock file or requirements.txt and rebuild the image so "
        "every run gets the same environment.",
        "For CUDA builds, match the framework wheel to the driver and toolkit "
        "(e.g. the torch index URL for your CUDA version).",
        "Print `pip freeze` at job start so the next failure shows the exact versions.",
    ),
    _info(
        Category.ENV_PATH,
        "File or directory not found or not accessible",
        "A path to code, configuration, data or a checkpoint does not exist where the job "
        "looked, or the job lacks permission to read or write it.",
        "A path the job used does not exist in the job's working directory or mount, or "
        "is not readable/writable by the job's user.",
        "Check the path from inside the job (working directory, mounts, relative vs. "
        "absolute paths).",
        "Build paths from one configurable root (e.g. a DATA_DIR setting) instead of "
        "hard-coding them.",
        "Check permissions and ownership of the directory the job writes to.",
        "Fail fast: validate input and output paths before the expensive part starts.",
    ),
    _info(
        Category.ENV_CONFIG,
        "Invalid configuration, argument or environment variable",
        "The job was started with arguments, a config file or environment variables that "
        "a script or library rejected.",
        "A command-line argument, config value or environment variable is missing, "
        "misspelled or out of the range the code accepts.",
        "Compare the failing config with the last one that worked (the ledger's config "
        "diff shows it).",
        "Validate the config at start-up, with the allowed range in the error message.",
        "Check for renamed or removed options after a library upgrade.",
        "Make required environment variables explicit in the launch script.",
    ),
    _info(
        Category.CODE_ERROR,
        "Bug in the code",
        "A general programming error: wrong types, missing attributes or names, bad "
        "indexing, syntax errors, failed assertions.",
        "The code has a bug that a test or a quick run on a small input would catch.",
        "Reproduce it on a tiny input (a few rows, one batch, one step) and fix the "
        "failing line shown in the traceback.",
        "Add a smoke test that runs one training step before launching long jobs.",
        "Run a type checker and linter over the training code before submitting.",
    ),
    _info(
        Category.DATA_ERROR,
        "Problem in the data",
        "The data is corrupt, unreadable, empty, has missing columns or values, "
        "unexpected types, or labels outside the expected range.",
        "The input data does not match what the code expects.",
        "Validate the dataset against a reference profile before training "
        "(schema, nulls, ranges, categories).",
        "Look at the rows or files named in the error and find where they came from.",
        "Impute or drop missing values, and cast columns to the expected dtypes "
        "explicitly when loading.",
        "Check that labels are in [0, num_classes) and that the dataset is not empty "
        "after filtering.",
    ),
    _info(
        Category.DL_GPU_OOM,
        "GPU out of memory",
        "The accelerator ran out of memory while allocating tensors for activations, "
        "gradients, optimizer state or the model itself.",
        "The model, batch and sequence length together need more GPU memory than is free.",
        "Lower the batch size and use gradient accumulation to keep the effective batch.",
        "Use mixed precision (bf16/fp16) and activation (gradient) checkpointing.",
        "Shorten the sequence length or image size, or shard the model (FSDP/ZeRO) across GPUs.",
        "Check for tensors kept across steps (e.g. summing losses without .item()) and "
        "other processes on the same GPU (nvidia-smi).",
    ),
    _info(
        Category.DL_CPU_OOM,
        "Host memory exhausted",
        "The machine ran out of RAM (or shared memory): a MemoryError, a failed "
        "allocation, or the kernel's OOM killer ended the process.",
        "The job needed more host memory than the machine or container limit allows.",
        "Load data lazily or in chunks (memory-mapping, streaming datasets) instead of "
        "all at once.",
        "Use smaller dtypes (float32 instead of float64, categoricals for strings).",
        "Reduce DataLoader num_workers and prefetching, and raise the container's "
        "memory limit or shared memory (--shm-size).",
        "Request a node with more memory, and watch peak RSS on a small run first.",
    ),
    _info(
        Category.DL_SHAPE_MISMATCH,
        "Tensor or array shape mismatch",
        "Two tensors or arrays that must line up have incompatible shapes: a layer's "
        "input size, broadcasting, concatenation or a checkpoint's parameter shapes.",
        "A layer or operation received an input whose shape differs from what it was built for.",
        "Print the shapes going into the failing layer for one batch.",
        "Make layer sizes follow from the data (e.g. infer in_features, or use lazy "
        "layers) instead of hard-coding them.",
        "When loading a checkpoint, check that the model was built with the same "
        "hyperparameters (num_classes, hidden size, vocab size).",
    ),
    _info(
        Category.DL_NAN_DIVERGENCE,
        "Loss became NaN or Inf (divergence)",
        "Training diverged: the loss or gradients became NaN or infinite, from a too-high "
        "learning rate, exploding gradients, fp16 overflow or bad inputs.",
        "Training became numerically unstable and produced NaN/Inf values.",
        "Lower the learning rate (often by 10x) and add warmup.",
        "Add gradient clipping (e.g. max norm 1.0).",
        "Check inputs and labels for NaN/Inf, and guard log/sqrt/division against zero.",
        "With fp16, use a loss scaler or switch to bf16.",
    ),
    _info(
        Category.DL_API_MISUSE,
        "Framework API misuse",
        "A deep-learning framework was used in a way it does not allow: tensors on "
        "different devices or with different dtypes, autograd misuse, an unbuilt or "
        "uncompiled model, a loss given the wrong kind of target.",
        "The code calls the framework in a way its API does not support.",
        "Move the model and every input to the same device, and cast inputs to the model's dtype.",
        "Check the framework documentation for the expected input and target format of "
        "the failing call.",
        "Detach tensors (.detach().cpu()) before converting to NumPy or logging them.",
    ),
    _info(
        Category.TRAIN_NO_LEARNING,
        "Training is not learning",
        "The loss stayed flat, stopped improving or fell far too slowly for the steps "
        "spent: the run would burn its budget without reaching a useful model.",
        "The optimiser makes no progress: a learning rate far too low, labels that do not "
        "match the inputs, a wrong loss for the task, or frozen parameters.",
        "Run a learning-rate range test and raise the learning rate if it is tiny.",
        "Check that the labels line up with the inputs (overfit one small batch first).",
        "Check that the loss matches the task and that every parameter you train has "
        "requires_grad set and is in the optimiser.",
        "Normalise the inputs (zero mean, unit variance).",
    ),
    _info(
        Category.TRAIN_OVERFITTING,
        "Overfitting",
        "The validation loss rose while the training loss kept falling, or ended far above "
        "it: the model memorises the training set instead of generalising.",
        "The model has more capacity than the training data supports, with too little "
        "regularisation or too many epochs.",
        "Stop earlier and keep the best weights (early stopping on the validation loss).",
        "Add regularisation: weight decay, dropout or data augmentation.",
        "Use a smaller model or more training data.",
        "Check that the validation set comes from the same distribution as the training set.",
    ),
    _info(
        Category.TRAIN_UNSTABLE,
        "Unstable optimisation",
        "The loss oscillated or jumped in spikes instead of settling, or the learning rate "
        "was outside any sane range: the optimiser overshoots the minimum.",
        "The learning rate or momentum is too high for the loss surface, or batches are "
        "too small or badly shuffled.",
        "Lower the learning rate (often by 3-10x) or add a warm-up and a decay schedule.",
        "Clip gradients (e.g. max norm 1.0) and lower the momentum.",
        "Increase the batch size and shuffle the data every epoch.",
    ),
    _info(
        Category.TRAIN_GRADIENT_FLOW,
        "Gradients do not flow through the network",
        "Gradients vanished or exploded across layers, ReLU units died or bounded "
        "activations saturated, so parts of the network stopped learning.",
        "The initialisation, activation functions or depth make gradients shrink or grow "
        "geometrically from layer to layer.",
        "Use an initialisation matched to the activation (He for ReLU, Xavier for tanh).",
        "Add normalisation layers (BatchNorm / LayerNorm) or residual connections.",
        "Replace sigmoid/tanh in hidden layers with ReLU-family activations, or "
        "ReLU with LeakyReLU/GELU when units die.",
        "Lower the learning rate and clip gradients when they explode.",
    ),
    _info(
        Category.TRAIN_RESOURCES,
        "Resources running out during training",
        "Throughput collapsed, memory kept growing, GPU memory neared its limit or the "
        "run would not finish within its time budget.",
        "The job leaks memory, starves on data loading or does more work per step than "
        "the hardware and the time budget allow.",
        "Check for tensors kept across steps (losses appended without .item(), growing "
        "caches) when memory grows.",
        "Profile the input pipeline (more DataLoader workers, pinned memory) when "
        "throughput falls.",
        "Lower the batch size or use mixed precision when memory is near the limit.",
        "Checkpoint regularly so a run that hits its time budget can resume.",
    ),
    _info(
        Category.INFRA_DISK_FULL,
        "Disk full or quota exceeded",
        "A write failed because the file system ran out of space or the user's quota.",
        "The disk or quota the job writes to (checkpoints, logs, caches, temp files) is full.",
        "Free space or write to a larger volume; check `df -h` and `du` on the target.",
        "Keep only the last and best checkpoints (e.g. save_total_limit / save_top_k).",
        "Point caches (HF_HOME, TMPDIR, pip cache) at a volume with room.",
    ),
    _info(
        Category.INFRA_NETWORK,
        "Network or remote service failure",
        "A connection to a remote service failed: refused, reset, timed out, DNS, TLS, "
        "or the service answered with an error or rate limit.",
        "A remote endpoint (model hub, object store, tracking server, API) could not be "
        "reached or refused the request.",
        "Retry with exponential backoff; transient network errors usually clear.",
        "Cache models and datasets locally (or pre-download them into the image) so "
        "training does not depend on the network.",
        "Check DNS, proxy and certificate settings from inside the job's network.",
    ),
    _info(
        Category.INFRA_GPU_DRIVER,
        "GPU, driver or hardware fault",
        "The GPU is not visible, the driver is missing or too old, or the device failed "
        "(illegal memory access, ECC errors, launch failures, NVML errors).",
        "The GPU or its driver failed or is not available to the job.",
        "Run nvidia-smi on the node and check the driver version against the CUDA "
        "version the framework needs.",
        "Rerun with CUDA_LAUNCH_BLOCKING=1 to find the failing kernel.",
        "If it repeats on one node, drain that node and report it (check dmesg for Xid errors).",
        "Check CUDA_VISIBLE_DEVICES and that the container was started with GPU access.",
    ),
    _info(
        Category.INFRA_DISTRIBUTED,
        "Distributed training failure",
        "Collective communication or the process group failed: NCCL/Gloo errors, "
        "collective timeouts, a rank crashing or hanging, rendezvous failures.",
        "One rank failed, hung or fell out of step, and the others timed out waiting for it.",
        "Find the first rank that failed: its own log shows the root cause.",
        "Rerun with NCCL_DEBUG=INFO and TORCH_DISTRIBUTED_DEBUG=DETAIL.",
        "Make sure every rank runs the same collectives in the same order (no "
        "rank-dependent branches around all_reduce or barriers).",
        "Check the network between nodes (interfaces, NCCL_SOCKET_IFNAME, firewalls).",
    ),
    _info(
        Category.INFRA_PREEMPTION,
        "Preempted or stopped by the scheduler",
        "The job was stopped from outside: a time limit, cancellation, spot/preemptible "
        "instance reclaim, SIGTERM or an interrupt.",
        "The scheduler or a person stopped the job; the code itself may be fine.",
        "Checkpoint regularly and resume from the last checkpoint on restart.",
        "Handle SIGTERM to save a checkpoint before exiting.",
        "Request a longer time limit or non-preemptible capacity for long runs.",
    ),
    _info(
        Category.UNKNOWN,
        "Unclassified failure",
        "No known failure pattern matched the evidence.",
        "No known failure pattern matched; read the last error lines of the log.",
        "Read the full log around the last error line.",
        "Record a lesson once the cause is known, so the next occurrence is recognised.",
    ),
)

CATEGORIES: Mapping[str, CategoryInfo] = MappingProxyType({info.id: info for info in _ALL})
"""Every category by id; look up with a :class:`Category` or its plain string."""


def category_info(category: str) -> CategoryInfo:
    """The :class:`CategoryInfo` of a category id, or a DiagnosisError naming the ids."""
    try:
        return CATEGORIES[Category(category)]
    except ValueError:
        known = ", ".join(c.value for c in Category)
        raise DiagnosisError(
            f"Unknown failure category {category!r}. Use one of: {known}."
        ) from None
