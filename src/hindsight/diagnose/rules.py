"""The classification rules: which evidence points to which failure category, and how hard.

A rule names a category and a weight, and any of: regular expressions on the evidence
text, exception type names, a pattern on the stack frames, exit codes and signals. All
the parts a rule has must hold for it to fire. Weights follow one scale:

- 7-8  a message that names the cause outright ("No space left on device")
- 5-6  a message specific to one cause ("mat1 and mat2 shapes cannot be multiplied")
- 3-4  a telling exception type or a message that usually means this cause
- 1-2  a generic exception type (``KeyError``) or a weak hint

Specific messages therefore beat generic exception types: a ``RuntimeError`` saying
"CUDA out of memory" is GPU memory, a ``ValueError`` saying "Input contains NaN" is data.

Judgement calls, documented once here:

- "device-side assert triggered" is a GPU fault unless the kernel's own assertion is
  printed too: a target/label bound (``t >= 0 && t < n_classes``) or an embedding index
  bound (``srcIndex < srcSelectDimSize``) is a data error; a generic index bound is a
  code error. Those assertion rules outweigh the GPU rule.
- Shared-memory exhaustion (``/dev/shm``, DataLoader bus errors) is host memory.
- ``AttributeError: module 'numpy' has no attribute 'float'`` on a well-known library is
  an API removed by an upgrade: a dependency problem, not a code bug.
- ``invalid device ordinal`` (asking for ``cuda:1`` on a one-GPU machine) is config.
- A bare ``ValueError`` or ``OSError`` gets only a weak vote, so that with nothing
  else to go on the result is reported with low confidence rather than as certain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hindsight.diagnose.taxonomy import Category

__all__ = ["RULES", "Rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One piece of evidence for a category; every part it has must match."""

    name: str
    category: Category
    weight: float
    patterns: tuple[re.Pattern[str], ...] = ()
    exc_types: frozenset[str] = frozenset()
    frame_pattern: re.Pattern[str] | None = None
    exit_codes: frozenset[int] = frozenset()
    signals: frozenset[int] = frozenset()


_FLAGS = re.IGNORECASE | re.MULTILINE
_counter: dict[Category, int] = {}


def _r(
    cat: Category,
    weight: float,
    *patterns: str,
    exc: tuple[str, ...] = (),
    frames: str | None = None,
    exit_codes: tuple[int, ...] = (),
    signals: tuple[int, ...] = (),
) -> Rule:
    _counter[cat] = _counter.get(cat, 0) + 1
    return Rule(
        name=f"{cat.value}#{_counter[cat]}",
        category=cat,
        weight=weight,
        patterns=tuple(re.compile(p, _FLAGS) for p in patterns),
        exc_types=frozenset(exc),
        frame_pattern=re.compile(frames, _FLAGS) if frames else None,
        exit_codes=frozenset(exit_codes),
        signals=frozenset(signals),
    )


C = Category
_LIBS = (
    r"numpy|np|torch|tensorflow|tf|keras|pandas|pd|sklearn|scipy|transformers|jax|"
    r"jaxlib|xgboost|lightgbm|datasets|accelerate|torchvision|PIL|cv2|matplotlib|"
    r"collections|typing|distutils|pkg_resources|setuptools|huggingface_hub"
)

# One rule per line reads as a table; keep the formatter from exploding it.
# fmt: off
_DEPENDENCY = (
    _r(C.ENV_DEPENDENCY, 4, exc=("ModuleNotFoundError",)),
    _r(C.ENV_DEPENDENCY, 3, exc=("DistributionNotFound", "ImportError", "PackageNotFoundError")),
    _r(C.ENV_DEPENDENCY, 4, exc=("ContextualVersionConflict", "VersionConflict")),
    _r(C.ENV_DEPENDENCY, 5, r"No module named ['\"]?[\w.]+"),
    _r(C.ENV_DEPENDENCY, 4, r"cannot import name '[\w.]+'"),
    _r(C.ENV_DEPENDENCY, 6, r"undefined symbol:", r"symbol lookup error"),
    _r(C.ENV_DEPENDENCY, 6, r"\.so(?:\.[\w.]+)?: cannot open shared object file"),
    _r(C.ENV_DEPENDENCY, 6, r"error while loading shared libraries"),
    _r(C.ENV_DEPENDENCY, 6, r"was compiled against|compiled using NumPy 1\.x cannot be run"),
    _r(C.ENV_DEPENDENCY, 6, r"numpy\.dtype size changed, may indicate binary incompatibility"),
    _r(C.ENV_DEPENDENCY, 6, r"binary incompatibility|ABI (?:mismatch|incompatib)"),
    _r(C.ENV_DEPENDENCY, 6, r"requires [\w.-]+[<>=!~]=?[\w.*]+,? but you have [\w.-]+ [\w.]+"),
    _r(C.ENV_DEPENDENCY, 6, r"ResolutionImpossible|Could not find a version that satisfies"),
    _r(C.ENV_DEPENDENCY, 6, r"No matching distribution found"),
    _r(C.ENV_DEPENDENCY, 6, r"DLL load failed"),
    _r(C.ENV_DEPENDENCY, 7, r"detected CUDA version .* mismatches the version"),
    _r(C.ENV_DEPENDENCY, 6, r"Torch not compiled with CUDA enabled"),
    _r(C.ENV_DEPENDENCY, 6, r"no kernel image is available for execution on the device"),
    _r(C.ENV_DEPENDENCY, 6, r"CUDA capability sm_\d+ is not compatible with"),
    _r(C.ENV_DEPENDENCY, 6, r"GLIBC(?:XX)?_[\d.]+'? not found"),
    _r(C.ENV_DEPENDENCY, 6, r"requires the [\w.-]+ library but it was not found"),
    _r(C.ENV_DEPENDENCY, 4, r"\b(?:is|are) not installed\b|not installed\. Please install"),
    _r(C.ENV_DEPENDENCY, 2.5, r"\bpip install\b|\bconda install\b"),
    _r(C.ENV_DEPENDENCY, 6, r"Loaded runtime CuDNN library: .* but source was compiled with"),
    _r(C.ENV_DEPENDENCY, 6, r"jaxlib version .* (?:is )?(?:older|newer) than|incompatible with "
       r"jax"),
    _r(C.ENV_DEPENDENCY, 5, r"(?:Could not|Unable to) load (?:dynamic )?library '?lib\w+"),
    _r(C.ENV_DEPENDENCY, 5, r"version mismatch|incompatible version|version [\w.]+ is required"),
    _r(C.ENV_DEPENDENCY, 4, r"requires? (?:a )?(?:newer|older) version of"),
    _r(C.ENV_DEPENDENCY, 4.5, rf"module '(?:{_LIBS})(?:\.\w+)*' has no attribute"),
    _r(C.ENV_DEPENDENCY, 6, r"there is no package called"),
    _r(C.ENV_DEPENDENCY, 5, r"Cannot find module '"),
    _r(C.ENV_DEPENDENCY, 4, exc=("ClassNotFoundException", "NoClassDefFoundError")),
    _r(C.ENV_DEPENDENCY, 5, r"command not found|: not found$"),
    _r(C.ENV_DEPENDENCY, 3, exit_codes=(127,)),
)

_PATH = (
    _r(C.ENV_PATH, 3.5, exc=("FileNotFoundError", "IsADirectoryError", "PermissionError")),
    _r(C.ENV_PATH, 3.5, exc=("FileExistsError", "NotADirectoryError")),
    _r(C.ENV_PATH, 1.2, exc=("IOError", "OSError")),
    _r(C.ENV_PATH, 4, r"No such file or directory|\[Errno 2\]|\bENOENT\b"),
    _r(C.ENV_PATH, 4, r"Permission denied|\[Errno 13\]|\bEACCES\b|Operation not permitted"),
    _r(C.ENV_PATH, 4, r"Is a directory|Not a directory|Read-only file system"),
    _r(C.ENV_PATH, 4, r"\b(?:file|path|directory|dir|folder|checkpoint|config|"
       r"weights)\b[^\n]{0,80}(?:not found|does not exist|doesn't exist|not exist|could not be "
       r"found)"),
    _r(C.ENV_PATH, 2, r"\bdoes not exist\b|\bnot found\b"),
    _r(C.ENV_PATH, 6, r"is not a local folder and is not a valid model identifier"),
    _r(C.ENV_PATH, 6, r"does not appear to have (?:a )?files? named"),
    _r(C.ENV_PATH, 5, r"Can't load (?:tokenizer|config|the model|weights|feature extractor)"),
    _r(C.ENV_PATH, 5, r"SavedModel file does not exist|Unable to open file \(unable to open"),
    _r(C.ENV_PATH, 5, r"Repository Not Found|404 Client Error|\(NoSuchKey\)|NoSuchBucket"),
    _r(C.ENV_PATH, 4, r"\(AccessDenied\)|403 Client Error|\bForbidden\b"),
    _r(C.ENV_PATH, 2, exit_codes=(126,)),
)

_CONFIG = (
    _r(C.ENV_CONFIG, 6, r"error: unrecognized arguments|error: the following arguments are "
       r"required"),
    _r(C.ENV_CONFIG, 6, r"error: argument [-\w/]+: (?:invalid|expected|ambiguous|not allowed)"),
    _r(C.ENV_CONFIG, 4, r"^usage: \S+"),
    _r(C.ENV_CONFIG, 3, exc=("SystemExit",), exit_codes=(2,)),
    _r(C.ENV_CONFIG, 1.5, exit_codes=(2,)),
    _r(C.ENV_CONFIG, 6, exc=("InvalidParameterError",)),
    _r(C.ENV_CONFIG, 6, r"The '\w+' parameter of \w+ must be"),
    _r(C.ENV_CONFIG, 5, exc=("ConfigAttributeError", "ConfigKeyError", "MissingMandatoryValue")),
    _r(C.ENV_CONFIG, 5, exc=("ConfigCompositionException", "OverrideParseException")),
    _r(C.ENV_CONFIG, 6, r"Missing mandatory value|Key '[\w.]+' (?:not in|is not in struct)"),
    _r(C.ENV_CONFIG, 6, r"Could not override '|Error merging override|Could not find '[\w/]+'"),
    _r(C.ENV_CONFIG, 5, r"\bunknown (?:config(?:uration)? )?(?:key|option|parameter|argument|"
       r"flag)s?\b"),
    _r(C.ENV_CONFIG, 5, r"\bunrecognized (?:option|argument|configuration|config|parameter)"),
    _r(C.ENV_CONFIG, 5, r"invalid (?:config|configuration|hyperparameter|parameter value)"),
    _r(C.ENV_CONFIG, 6, r"environment variable [\w\"'`]+ (?:is )?(?:not set|missing|expected|"
       r"must be set|is required)"),
    _r(C.ENV_CONFIG, 4, r"(?:env(?:ironment)? var(?:iable)?s?|os\.environ)\b[^\n]{0,60}\b(?:not "
       r"set|missing|unset)"),
    # os.environ["X"] fails inside os.py (or "<frozen os>" since Python 3.11).
    _r(C.ENV_CONFIG, 4, exc=("KeyError",), frames=r"(?:[/\\]os\.py|<frozen os>):__getitem__"),
    _r(C.ENV_CONFIG, 2.5, r"(?-i:^KeyError: '[A-Z][A-Z0-9_]{2,}'$)", exc=("KeyError",)),
    _r(C.ENV_CONFIG, 6, r"Invalid (?:learning rate|lr|weight_decay value|momentum value|beta "
       r"parameter|epsilon value)"),
    _r(C.ENV_CONFIG, 5, r"Unknown (?:solver|optimizer|activation|loss|metric|scheduler|objective|"
       r"criterion|penalty|kernel|model type|model_type|backend|strategy)"),
    _r(C.ENV_CONFIG, 6, r"Could not interpret (?:optimizer|activation function|loss function|"
       r"metric function|initializer) identifier"),
    _r(C.ENV_CONFIG, 4, r"Invalid Parameter format|Unknown parameter:?"),
    _r(C.ENV_CONFIG, 3, r"\bmust be (?:one of|a positive|positive|a non-negative|non-negative|"
       r"greater than|less than|in the range|between|an? (?:int|integer|float|string|bool))"),
    _r(C.ENV_CONFIG, 3, r"\b(?:should|must) be (?:>|<|>=|<=) ?-?\d|\bgot an invalid value\b|is "
       r"not a valid (?:value|choice|option)"),
    _r(C.ENV_CONFIG, 4, r"validation errors? for \w*(?:Config|Settings|Args|Arguments|Params)"),
    _r(C.ENV_CONFIG, 4, exc=("ComposerError", "ConstructorError", "ParserError", "ScannerError"),
       frames=r"yaml"),
    _r(C.ENV_CONFIG, 4, r"while (?:scanning|parsing) a (?:simple key|block|flow|quoted)"),
    _r(C.ENV_CONFIG, 4, exc=("JSONDecodeError", "TOMLDecodeError"),
       frames=r"conf|setting|param|hparam|args"),
    _r(C.ENV_CONFIG, 5, r"invalid device ordinal"),
    _r(C.ENV_CONFIG, 6, r"NoCredentialsError|Unable to locate credentials|ExpiredToken|"
       r"InvalidAccessKeyId|SignatureDoesNotMatch"),
    _r(C.ENV_CONFIG, 5, r"401 Client Error|\bUnauthorized\b|Invalid (?:user )?token|gated repo|"
       r"is restricted|You must be authenticated"),
    _r(C.ENV_CONFIG, 5, r"Default process group has not been initialized|init_process_group"),
    _r(C.ENV_CONFIG, 1, exc=("ValueError",)),
)

_CODE = (
    _r(C.CODE_ERROR, 2, exc=("AttributeError", "IndexError", "KeyError", "TypeError")),
    _r(C.CODE_ERROR, 3.5, exc=("IndentationError", "NameError", "SyntaxError",
           "UnboundLocalError")),
    _r(C.CODE_ERROR, 3.5, exc=("RecursionError", "TabError", "ZeroDivisionError")),
    _r(C.CODE_ERROR, 2.5, exc=("AssertionError", "NotImplementedError", "StopIteration")),
    _r(C.CODE_ERROR, 1.5, exc=("ArithmeticError", "LookupError", "UnicodeEncodeError",
           "ValueError")),
    _r(C.CODE_ERROR, 4, r"maximum recursion depth exceeded"),
    _r(C.CODE_ERROR, 4, r"name '\w+' is not defined|referenced before assignment|cannot access "
       r"local variable"),
    _r(C.CODE_ERROR, 4, r"invalid syntax|unexpected indent|unindent does not match|expected an "
       r"indented block"),
    _r(C.CODE_ERROR, 3, r"object has no attribute '\w+'"),
    _r(C.CODE_ERROR, 3.5, r"object is not (?:subscriptable|callable|iterable)|is not iterable"),
    _r(C.CODE_ERROR, 3.5, r"unsupported operand type|can only concatenate \w+ \(not"),
    _r(C.CODE_ERROR, 3.5, r"takes \d+ positional arguments? but \d+ (?:were|was) given"),
    _r(C.CODE_ERROR, 3.5, r"missing \d+ required (?:positional|keyword-only) arguments?"),
    _r(C.CODE_ERROR, 3.5, r"got an unexpected keyword argument|got multiple values for argument"),
    _r(C.CODE_ERROR, 3.5, r"list index out of range|tuple index out of range|string index out of "
       r"range"),
    _r(C.CODE_ERROR, 4, r"division by zero|divide by zero"),
    _r(C.CODE_ERROR, 6, r"partially initialized module"),
    _r(C.CODE_ERROR, 3, r"'NoneType' object"),
    _r(C.CODE_ERROR, 5, r"is missing the required \"?forward\"? function"),
    _r(C.CODE_ERROR, 3, r"NullPointerException"),
    _r(C.CODE_ERROR, 2, r"Segmentation fault|SIGSEGV|core dumped"),
    _r(C.CODE_ERROR, 2, exit_codes=(139,), signals=(11,)),
    # Kernel assertions print before the traceback (tail weight), so they weigh more.
    _r(C.CODE_ERROR, 9, r"Assertion `[^`]*index out of bounds[^`]*` failed"),
    _r(C.CODE_ERROR, 2.5, r"index -?\d+ is out of bounds for (?:axis|dimension) \d+ with size \d+"),
)

_DATA = (
    _r(C.DATA_ERROR, 4.5, exc=("EmptyDataError", "UnicodeDecodeError", "UnpicklingError")),
    _r(C.DATA_ERROR, 4.5, exc=("BadZipFile", "DecompressionBombError", "UnidentifiedImageError")),
    _r(C.DATA_ERROR, 4, exc=("ArrowInvalid", "DtypeWarning", "ParserWarning",
           "pandas.ParserError")),
    _r(C.DATA_ERROR, 3.5, exc=("EOFError", "JSONDecodeError", "MergeError", "_csv.Error",
           "csv.Error")),
    _r(C.DATA_ERROR, 4, exc=("KeyError",), frames=r"pandas[/\\]|polars|pyarrow"),
    _r(C.DATA_ERROR, 7, r"Input (?:\w+ )?contains NaN|Input contains infinity|contains NaN, "
       r"infinity"),
    _r(C.DATA_ERROR, 6, r"could not convert string to float|Unable to parse string|invalid "
       r"literal for int\(\)"),
    _r(C.DATA_ERROR, 6, r"Error tokenizing data|No columns to parse from file|Expected \d+ "
       r"fields in line"),
    _r(C.DATA_ERROR, 6, r"codec can't decode byte|invalid start byte|invalid continuation byte"),
    _r(C.DATA_ERROR, 6, r"image file is truncated|cannot identify image file|broken data stream"),
    _r(C.DATA_ERROR, 6, r"Ran out of input|pickle data was truncated|invalid load key|unpickling "
       r"stack underflow"),
    _r(C.DATA_ERROR, 5, r"not in index|None of \[.*\] are in the \[(?:columns|index)\]"),
    _r(C.DATA_ERROR, 5, r"\bcolumns? [\"'\w\[\], ]{0,80}(?:is|are) (?:missing|not found|not "
       r"present)|missing columns?"),
    _r(C.DATA_ERROR, 6, r"Found array with 0 sample\(s\)|Found array with 0 feature\(s\)"),
    _r(C.DATA_ERROR, 6, r"num_samples should be a positive integer value, but got num_samples=0"),
    _r(C.DATA_ERROR, 5, r"\b(?:dataset|dataframe|data ?loader|data|input|array|file) is empty\b|"
       r"empty (?:dataset|dataframe)"),
    _r(C.DATA_ERROR, 4, r"No objects to concatenate|zero-size array to reduction operation"),
    _r(C.DATA_ERROR, 7, r"Target -?\d+ is out of bounds"),
    _r(C.DATA_ERROR, 9, r"Assertion `(?:t >= 0|cur_target|target_val|srcIndex < "
       r"srcSelectDimSize)[^`]*` failed"),
    _r(C.DATA_ERROR, 4.5, r"index out of range in self"),
    _r(C.DATA_ERROR, 5, r"\blabels? [^\n]{0,60}(?:out of (?:range|bounds)|must be in|should be "
       r"in)"),
    _r(C.DATA_ERROR, 6, r"y contains previously unseen labels|Found unknown categories|Unknown "
       r"label type"),
    _r(C.DATA_ERROR, 5, r"needs samples of at least 2 classes|contains only one class|least "
       r"populated class in y has only"),
    _r(C.DATA_ERROR, 6, r"trying to merge on [\w\[\]]+ and [\w\[\]]+ columns|incompatible merge "
       r"keys"),
    _r(C.DATA_ERROR, 5, r"cannot reindex on an axis with duplicate labels|Reindexing only valid "
       r"with uniquely valued"),
    _r(C.DATA_ERROR, 4, r"Length of values \(\d+\) does not match length of index|All arrays "
       r"must be of the same length"),
    _r(C.DATA_ERROR, 5, r"time data .* does not match format|Out of bounds nanosecond timestamp"),
    _r(C.DATA_ERROR, 6, r"Cannot convert non-finite values \(NA or inf\) to integer|Cannot mask "
       r"with non-boolean array"),
    _r(C.DATA_ERROR, 4, r"setting an array element with a sequence"),
    _r(C.DATA_ERROR, 4, r"\bcorrupt(?:ed)?\b|CRC check failed|checksum mismatch|crc32 mismatch"),
    _r(C.DATA_ERROR, 5, r"Not a gzipped file|Parquet magic bytes not found|file signature not "
       r"found"),
    _r(C.DATA_ERROR, 4, r"Invalid (?:header|magic number|file format)|not a valid (?:image|"
       r"parquet|csv|jpeg|png)"),
    _r(C.DATA_ERROR, 3, r"\bduplicate (?:column|key|index)"),
    _r(C.DATA_ERROR, 2, r"\bcould not (?:read|decode|parse)\b|\bfailed to (?:decode|parse)\b"),
)

_GPU_OOM = (
    _r(C.DL_GPU_OOM, 6, exc=("torch.OutOfMemoryError", "torch.cuda.OutOfMemoryError")),
    _r(C.DL_GPU_OOM, 4, exc=("ResourceExhaustedError",)),
    _r(C.DL_GPU_OOM, 7, r"CUDA out of memory|CUDA error: out of memory|CUDA_ERROR_OUT_OF_MEMORY"),
    _r(C.DL_GPU_OOM, 7, r"OOM when allocating tensor(?![^\n]*device:CPU)"),
    _r(C.DL_GPU_OOM, 7, r"CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED|"
       r"cudaErrorMemoryAllocation"),
    _r(C.DL_GPU_OOM, 7, r"HIP out of memory|MPS backend out of memory|XPU out of memory"),
    _r(C.DL_GPU_OOM, 6, r"RESOURCE_EXHAUSTED: Out of memory|Out of memory while trying to "
       r"allocate"),
    _r(C.DL_GPU_OOM, 5, r"failed to alloc[\w ]* on (?:device|GPU)|"
       r"thrust::system::detail::bad_alloc"),
    _r(C.DL_GPU_OOM, 3, r"Tried to allocate [\d.]+ ?[KMGT]i?B"),
    _r(C.DL_GPU_OOM, 3, r"\b(?:GPU|device) memory\b[^\n]{0,40}(?:exhausted|full|insufficient)"),
)

_CPU_OOM = (
    _r(C.DL_CPU_OOM, 5, exc=("MemoryError", "_ArrayMemoryError")),
    _r(C.DL_CPU_OOM, 7, r"Unable to allocate [\d.]+ ?[KMGTP]i?B for an array"),
    _r(C.DL_CPU_OOM, 6, r"Cannot allocate memory|\[Errno 12\]|\bENOMEM\b"),
    _r(C.DL_CPU_OOM, 7, r"oom-kill|oom_kill|OOM[ -]killer|Out of memory: Kill(?:ed)? process|"
       r"OOMKilled"),
    _r(C.DL_CPU_OOM, 7, r"memory cgroup out of memory|killed by the cgroup out-of-memory"),
    _r(C.DL_CPU_OOM, 7, r"Memory limit exceeded|exceeded (?:its |the )?memory limit|exceeding "
       r"memory limits"),
    _r(C.DL_CPU_OOM, 7, r"DefaultCPUAllocator: (?:can't|not enough memory)|OOM when allocating "
       r"tensor[^\n]*device:CPU"),
    _r(C.DL_CPU_OOM, 6, r"std::bad_alloc|java\.lang\.OutOfMemoryError|Java heap space|GC "
       r"overhead limit"),
    _r(C.DL_CPU_OOM, 7, r"cannot allocate vector of size"),
    _r(C.DL_CPU_OOM, 6, r"is killed by signal: Killed|killed by signal: 9"),
    _r(C.DL_CPU_OOM, 6, r"insufficient shared memory|unable to write to file </torch_|"
       r"\bshm\b[^\n]{0,40}(?:full|space|size)"),
    _r(C.DL_CPU_OOM, 3.5, r"bus error|DataLoader worker \(pid\(?s?\)? [^)]*\) exited unexpectedly"),
    _r(C.DL_CPU_OOM, 5, r"(?-i:^\s*Killed\s*$)|\bKilled process \d+|Killed\s+python"),
    _r(C.DL_CPU_OOM, 4, r"\bSIGKILL\b|signal 9\b"),
    # torchrun's report of a child killed by signal 9, which is almost always the OOM killer.
    _r(C.DL_CPU_OOM, 6, r"Signal 9 \(SIGKILL\) received by PID|exitcode\s*:\s*-9\b"),
    _r(C.DL_CPU_OOM, 4, r"(?:exit(?:ed)?(?: with)?(?: code| status)?|exitcode|return "
       r"code)\s*[:=]?\s*137\b"),
    _r(C.DL_CPU_OOM, 4, exit_codes=(137, -9), signals=(9,)),
    _r(C.DL_CPU_OOM, 5, r"low on resource: memory|KilledWorker|Worker exceeded \d+% memory"),
    # GPU messages say "CUDA out of memory" and the like; a bare "out of memory" is the host.
    _r(C.DL_CPU_OOM, 3, r"\bfailed to allocate memory\b|"
       r"(?<!CUDA )(?<!HIP )(?<!XPU )(?<!GPU )(?<!backend )(?<!EXHAUSTED: )"
       r"\bout of (?:host )?memory\b"),
)

_SHAPE = (
    _r(C.DL_SHAPE_MISMATCH, 7, r"has a mismatch in its core dimension|size \d+ is different from \d+"),
    _r(C.DL_SHAPE_MISMATCH, 7, r"mat1 and mat2 shapes cannot be multiplied|shapes cannot be "
       r"multiplied"),
    _r(C.DL_SHAPE_MISMATCH, 6, r"\bsize mismatch\b|\bshape mismatch\b|dimension mismatch|"
       r"inconsistent shapes"),
    _r(C.DL_SHAPE_MISMATCH, 7, r"shapes \([^)]*\) and \([^)]*\) not aligned|operands could not "
       r"be broadcast together"),
    _r(C.DL_SHAPE_MISMATCH, 7, r"Incompatible shapes|The size of tensor a \(\d+\) must match the "
       r"size of tensor b"),
    _r(C.DL_SHAPE_MISMATCH, 7, r"expected (?:input|weight)\S* .{0,80}to have \d+ channels"),
    _r(C.DL_SHAPE_MISMATCH, 7, r"Found input variables with inconsistent numbers of samples"),
    _r(C.DL_SHAPE_MISMATCH, 6, r"Shapes? [^\n]{0,60}(?:are|is) incompatible|Dimensions must be "
       r"equal"),
    _r(C.DL_SHAPE_MISMATCH, 7, r"cannot reshape array of size \d+ into shape|shape '\[[^\]]*\]' "
       r"is invalid for input of size"),
    _r(C.DL_SHAPE_MISMATCH, 7, r"Expected input batch_size \(\d+\) to match target batch_size"),
    _r(C.DL_SHAPE_MISMATCH, 7, r"X has \d+ features?, but \w+ is expecting \d+ features"),
    _r(C.DL_SHAPE_MISMATCH, 7, r"is incompatible with the layer|expected (?:min_)?ndim=\d+, "
       r"found ndim=\d+"),
    _r(C.DL_SHAPE_MISMATCH, 7, r"Expected \d+D \(unbatched\) or \d+D \(batched\) input|Given "
       r"groups=\d+, weight of size"),
    _r(C.DL_SHAPE_MISMATCH, 7, r"Sizes of tensors must match except in dimension|array "
       r"dimensions .* must match exactly"),
    _r(C.DL_SHAPE_MISMATCH, 6, r"could not broadcast input array from shape|all input arrays "
       r"must have the same shape"),
    _r(C.DL_SHAPE_MISMATCH, 7, r"Expected 2D array, got (?:1D|scalar) array instead"),
    _r(C.DL_SHAPE_MISMATCH, 6, r"input\.size\(-1\) must be equal to input_size|Expected "
       r"hidden\[?\d?\]? size"),
    _r(C.DL_SHAPE_MISMATCH, 6, r"dot_general requires contracting dimensions|Incompatible shapes "
       r"for broadcasting"),
    _r(C.DL_SHAPE_MISMATCH, 6, r"logits and labels must have the same|Cannot feed value of shape|"
       r"Shapes must be equal rank"),
    _r(C.DL_SHAPE_MISMATCH, 6, r"Error when checking (?:input|target|model input)"),
    _r(C.DL_SHAPE_MISMATCH, 5, r"number of dims don't match|expected sequence of length \d+ at "
       r"dim \d+"),
    _r(C.DL_SHAPE_MISMATCH, 4, r"\bshapes?\b[^\n]{0,60}\b(?:mismatch|do not match|don't match|"
       r"must match)"),
)

_NAN = (
    _r(C.DL_NAN_DIVERGENCE, 5, exc=("FloatingPointError",)),
    _r(C.DL_NAN_DIVERGENCE, 6, r"\bloss\b[^\n]{0,40}?(?:\bis|=|:|became|becomes|"
       r"of)\s*[-+]?(?:nan|inf)\b"),
    _r(C.DL_NAN_DIVERGENCE, 6, r"\b(?:nan|inf|non-finite) loss\b|loss is not finite|loss (?:is "
       r")?(?:nan|NaN)"),
    _r(C.DL_NAN_DIVERGENCE, 7, r"returned nan values in its \d+\w* output"),
    _r(C.DL_NAN_DIVERGENCE, 6, r"Detected (?:inf or nan|nan or inf|inf/nan|nan/inf)|nan values "
       r"found"),
    _r(C.DL_NAN_DIVERGENCE, 6, r"gradient overflow|Current loss scale already at minimum|Minimum "
       r"loss scale reached"),
    _r(C.DL_NAN_DIVERGENCE, 6, r"Invalid loss, terminating training|TerminateOnNaN"),
    _r(C.DL_NAN_DIVERGENCE, 6, r"Monitored metric [\w/.]+ = (?:nan|inf) is not finite"),
    _r(C.DL_NAN_DIVERGENCE, 5, r"(?:NaN|Inf) (?:or (?:Inf|NaN) )?(?:found|detected) in (?:input "
       r"tensor|gradients?|loss|weights)"),
    _r(C.DL_NAN_DIVERGENCE, 5, r"Tensor had (?:NaN|Inf) values|\bnan detected\b|\bdetected nan\b|"
       r"encountered (?:a )?nan"),
    _r(C.DL_NAN_DIVERGENCE, 5, r"\bdiverg(?:ed|ence|ing)\b|exploding gradients?"),
    _r(C.DL_NAN_DIVERGENCE, 3, r"overflow encountered in|OVERFLOW! Skipping step"),
    _r(C.DL_NAN_DIVERGENCE, 2, r"invalid value encountered in"),
)

_API = (
    _r(C.DL_API_MISUSE, 7, r"Expected all tensors to be on the same device|Expected object of "
       r"device type"),
    _r(C.DL_API_MISUSE, 7, r"Input type \([\w.]+\) and weight type \([\w.]+\) should be the same"),
    _r(C.DL_API_MISUSE, 6, r"expected device \S+ but got device|tensors? (?:is|are) on (?:a "
       r")?different devices?"),
    _r(C.DL_API_MISUSE, 7, r"expected scalar type \w+ but found \w+|Expected object of scalar "
       r"type \w+"),
    _r(C.DL_API_MISUSE, 7, r"expected (?:m1|mat1) and (?:m2|mat2) to have the same dtype|Found "
       r"dtype \w+ but expected \w+"),
    _r(C.DL_API_MISUSE, 6, r"to have (?:one of the following )?scalar types?:? \w+|result type "
       r"\w+ can't be cast to the desired output type"),
    _r(C.DL_API_MISUSE, 6, r"not implemented for '(?:Int|Long|Float|Double|Half|BFloat16|Bool|"
       r"Byte|Char|Short|ComplexFloat)'"),
    _r(C.DL_API_MISUSE, 7, r"Trying to backward through the graph a second time"),
    _r(C.DL_API_MISUSE, 7, r"modified by an inplace operation|leaf Variable that requires grad "
       r"is being used in an in-place"),
    _r(C.DL_API_MISUSE, 7, r"element 0 of tensors does not require grad|does not have a grad_fn"),
    _r(C.DL_API_MISUSE, 7, r"Can't call numpy\(\) on Tensor that requires grad|can't convert "
       r"cuda:?\d* (?:device type )?tensor to numpy"),
    _r(C.DL_API_MISUSE, 7, r"This model has not yet been built|You must compile your model before"),
    _r(C.DL_API_MISUSE, 7, r"grad can be implicitly created only for scalar outputs"),
    _r(C.DL_API_MISUSE, 5, r"view size is not compatible with input tensor's size and stride"),
    _r(C.DL_API_MISUSE, 6, r"Cannot re-initialize CUDA in forked subprocess"),
    _r(C.DL_API_MISUSE, 7, r"multi-target not supported|Target size \(.*\) must be the same as "
       r"input size"),
    _r(C.DL_API_MISUSE, 4, r"Using a target size \(.*\) that is different to the input size"),
    _r(C.DL_API_MISUSE, 6, r"all elements of input should be between 0 and 1|Assertion "
       r"`input_val >= zero && input_val <= one`"),
    _r(C.DL_API_MISUSE, 6, r"Expected floating point type for target with class probabilities"),
    _r(C.DL_API_MISUSE, 6, r"cannot assign module before Module\.__init__\(\) call|optimizer got "
       r"an empty parameter list"),
    _r(C.DL_API_MISUSE, 6, r"Boolean value of Tensor with more than one (?:value|element) is "
       r"ambiguous"),
    _r(C.DL_API_MISUSE, 5, r"truth value of an? (?:array|Series|DataFrame)[^\n]* is ambiguous"),
    _r(C.DL_API_MISUSE, 6, r"Inference tensors cannot be saved for backward|Tensor is not an "
       r"element of this graph"),
    _r(C.DL_API_MISUSE, 6, r"A KerasTensor cannot be used as input to a TensorFlow function|"
       r"numpy\(\) is only available when eager"),
    _r(C.DL_API_MISUSE, 6, r"tried to create variables on non-first call|Attempting to capture "
       r"an EagerTensor"),
    _r(C.DL_API_MISUSE, 6, exc=("ConcretizationTypeError", "TracerArrayConversionError",
           "TracerBoolConversionError")),
    _r(C.DL_API_MISUSE, 6, exc=("NotFittedError", "UnexpectedTracerError")),
    _r(C.DL_API_MISUSE, 6, r"Abstract tracer value encountered|JAX arrays are immutable|instance "
       r"is not fitted yet"),
    _r(C.DL_API_MISUSE, 6, r"tokenizer does not have a padding token|You have to specify either "
       r"input_ids or inputs_embeds"),
    _r(C.DL_API_MISUSE, 4, r"Can't pickle local object|Can't get local object"),
)

_DISK = (
    _r(C.INFRA_DISK_FULL, 8, r"No space left on device|\[Errno 28\]|\bENOSPC\b"),
    _r(C.INFRA_DISK_FULL, 8, r"Disk quota exceeded|\[Errno 122\]|\bEDQUOT\b"),
    _r(C.INFRA_DISK_FULL, 7, r"There is not enough space on the disk|database or disk is full|"
       r"low on resource: ephemeral-storage"),
    _r(C.INFRA_DISK_FULL, 5, r"\bdisk (?:is )?full\b|(?:not enough|insufficient) (?:free )?disk "
       r"space|\bDiskPressure\b"),
    _r(C.INFRA_DISK_FULL, 5, r"PytorchStreamWriter failed writing file|file write failed|"
       r"unexpected pos \d+ vs \d+"),
)

_NETWORK = (
    _r(C.INFRA_NETWORK, 4, exc=("ConnectionError", "ConnectionRefusedError",
           "ConnectionResetError")),
    _r(C.INFRA_NETWORK, 4, exc=("BrokenPipeError", "ConnectionAbortedError", "gaierror", "herror")),
    _r(C.INFRA_NETWORK, 5, exc=("ConnectTimeout", "ConnectTimeoutError", "ReadTimeout",
           "ReadTimeoutError")),
    _r(C.INFRA_NETWORK, 5, exc=("MaxRetryError", "NewConnectionError", "ProxyError", "SSLError")),
    _r(C.INFRA_NETWORK, 5, exc=("ChunkedEncodingError", "IncompleteRead", "RemoteDisconnected",
           "URLError")),
    _r(C.INFRA_NETWORK, 5, exc=("ClientConnectorError", "ConnectError", "RemoteProtocolError",
           "ServerDisconnectedError")),
    _r(C.INFRA_NETWORK, 5, exc=("EndpointConnectionError", "HfHubHTTPError",
           "ServiceUnavailable", "TooManyRequests")),
    _r(C.INFRA_NETWORK, 3, exc=("DeadlineExceeded", "HTTPError", "InternalServerError",
           "TimeoutError", "timeout")),
    _r(C.INFRA_NETWORK, 5, r"Connection refused|Connection reset by peer|Connection aborted|"
       r"Connection timed out"),
    _r(C.INFRA_NETWORK, 7, r"Name or service not known|Temporary failure in name resolution|"
       r"nodename nor servname"),
    _r(C.INFRA_NETWORK, 7, r"getaddrinfo failed|Could not resolve host|Network is unreachable|No "
       r"route to host"),
    _r(C.INFRA_NETWORK, 7, r"CERTIFICATE_VERIFY_FAILED|SSL: |SSLError|EOF occurred in violation "
       r"of protocol"),
    _r(C.INFRA_NETWORK, 7, r"Max retries exceeded with url|Failed to establish a new connection"),
    _r(C.INFRA_NETWORK, 6, r"\b5\d\d (?:Server Error|Service Unavailable|Bad Gateway|Gateway "
       r"Time-?out|Internal Server Error)"),
    _r(C.INFRA_NETWORK, 6, r"\b429\b[^\n]{0,30}Too Many Requests|Too Many Requests|Rate "
       r"limit(?:ed| exceeded)|\bSlowDown\b|Throttling"),
    _r(C.INFRA_NETWORK, 5, r"Service Unavailable|Bad Gateway|Gateway Time-?out|Remote end closed "
       r"connection"),
    _r(C.INFRA_NETWORK, 6, r"Read timed out|Connect timeout|timed out while (?:connecting|"
       r"reading)|socket hang up"),
    _r(C.INFRA_NETWORK, 6, r"\b(?:ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH)\b"),
    _r(C.INFRA_NETWORK, 6, r"An error occurred \((?:SlowDown|ServiceUnavailable|InternalError|"
       r"RequestTimeout|ThrottlingException|RequestLimitExceeded)\)"),
    _r(C.INFRA_NETWORK, 6, r"Could not connect to the endpoint URL|couldn't connect to "
       r"'?https?://|urlopen error"),
    _r(C.INFRA_NETWORK, 5, r"StatusCode\.(?:UNAVAILABLE|DEADLINE_EXCEEDED)|\bUNAVAILABLE: "),
    _r(C.INFRA_NETWORK, 3, r"HTTPS?ConnectionPool|\bBroken pipe\b|\bproxy\b|\btimed out\b"),
    _r(C.INFRA_NETWORK, 2, r"\bnetwork error\b|\bDNS\b|API request to .* failed"),
)

_GPU_DRIVER = (
    _r(C.INFRA_GPU_DRIVER, 8, r"no CUDA GPUs are available|no CUDA-capable device is detected|"
       r"CUDA_ERROR_NO_DEVICE"),
    _r(C.INFRA_GPU_DRIVER, 8, r"CUDA driver version is insufficient|Found no NVIDIA driver|"
       r"NVIDIA driver on your system is too old"),
    _r(C.INFRA_GPU_DRIVER, 7, r"\bNVML\b|nvmlInit|NVIDIA-SMI has failed"),
    _r(C.INFRA_GPU_DRIVER, 7, r"illegal memory access|cudaErrorIllegalAddress|"
       r"CUDA_ERROR_ILLEGAL_ADDRESS|misaligned address"),
    _r(C.INFRA_GPU_DRIVER, 7, r"\bECC error|uncorrectable ECC|fallen off the bus|GPU is lost|"
       r"\bXid\b"),
    _r(C.INFRA_GPU_DRIVER, 6, r"CUDNN_STATUS_(?:INTERNAL_ERROR|EXECUTION_FAILED|NOT_INITIALIZED|"
       r"MAPPING_ERROR)"),
    _r(C.INFRA_GPU_DRIVER, 6, r"CUBLAS_STATUS_(?:EXECUTION_FAILED|NOT_INITIALIZED|"
       r"INTERNAL_ERROR)|cuDNN error"),
    _r(C.INFRA_GPU_DRIVER, 7, r"unspecified launch failure|cudaErrorLaunchFailure|the launch "
       r"timed out and was terminated"),
    _r(C.INFRA_GPU_DRIVER, 5, r"device-side assert(?:ion)? triggered"),
    _r(C.INFRA_GPU_DRIVER, 6, r"busy or unavailable|CUDA unknown error|Failed call to cuInit|"
       r"cudaGetDeviceCount"),
    _r(C.INFRA_GPU_DRIVER, 6, r"Attempting to deserialize object on a CUDA device but "
       r"torch\.cuda\.is_available\(\) is False"),
    _r(C.INFRA_GPU_DRIVER, 6, r"Unable to initialize backend '(?:cuda|gpu|rocm|tpu)'|TPU "
       r"initialization failed|Failed to connect to TPU"),
    _r(C.INFRA_GPU_DRIVER, 2.5, r"CUDA error: |CUDA_ERROR_\w+|\bcudaError\w+"),
)

_DISTRIBUTED = (
    _r(C.INFRA_DISTRIBUTED, 6, exc=("DistBackendError", "DistNetworkError", "DistStoreError",
           "HorovodInternalError")),
    _r(C.INFRA_DISTRIBUTED, 3.5, exc=("ChildFailedError", "RendezvousClosedError",
           "RendezvousTimeoutError")),
    _r(C.INFRA_DISTRIBUTED, 7, r"NCCL error|\bnccl\w*Error\b|ncclUnhandledCudaError|"
       r"ncclSystemError|ncclRemoteError"),
    _r(C.INFRA_DISTRIBUTED, 8, r"Watchdog caught collective operation timeout|collective "
       r"operation timeout"),
    _r(C.INFRA_DISTRIBUTED, 7, r"some NCCL operations have failed or timed out|NCCL communicator "
       r"was aborted"),
    _r(C.INFRA_DISTRIBUTED, 8, r"Expected to have finished reduction in the prior iteration"),
    _r(C.INFRA_DISTRIBUTED, 7, r"Expected to mark a variable ready only once|Detected mismatch "
       r"between collectives"),
    _r(C.INFRA_DISTRIBUTED, 7, r"client socket has failed to connect|Connection closed by peer|"
       r"\bgloo/transport\b"),
    _r(C.INFRA_DISTRIBUTED, 6, r"monitoredBarrier|Timed out waiting for [^\n]{0,40}(?:ranks?|"
       r"workers?|peers?|barrier)"),
    _r(C.INFRA_DISTRIBUTED, 6, r"MPI_ABORT|mpirun noticed that process rank|MPI_ERR_\w+|Primary "
       r"job\s+terminated normally, but"),
    _r(C.INFRA_DISTRIBUTED, 5, r"Rendezvous|\bTCPStore\b|ProcessGroupNCCL|ProcessGroupGloo|"
       r"\bc10d\b"),
    # The elastic launcher's wrapper; the child's own error, when shown, names the real cause.
    _r(C.INFRA_DISTRIBUTED, 3, r"ChildFailedError|torch\.distributed\.elastic"),
    _r(C.INFRA_DISTRIBUTED, 4, r"\bNCCL WARN\b|\bhorovod\b"),
    _r(C.INFRA_DISTRIBUTED, 4, r"\brank\s*\d+\b[^\n]{0,60}\b(?:failed|exited|crashed|timed? ?out|"
       r"died|terminated)"),
    _r(C.INFRA_DISTRIBUTED, 5, r"Collective ops is aborted|CollectiveOps|coordination service|"
       r"Barrier timed out"),
    _r(C.INFRA_DISTRIBUTED, 4, r"RayActorError|The actor died unexpectedly|ActorDiedError|"
       r"\bRabit\b"),
)

# What the training guard (hindsight.training) reports: "TrainingSymptom: <kind> (severity=
# stop|warn) at step N". A stop names the failure; a warning alone is a weaker hint. A loss
# that became NaN or exploded is divergence, whoever saw it.
_SYMPTOM = r"TrainingSymptom: (?:{kinds})\b"
_STOPPED = r"TrainingSymptom: (?:{kinds}) \(severity=stop\)"


def _symptom_rules(cat: Category, kinds: str) -> tuple[Rule, Rule]:
    return (
        _r(cat, 12, _STOPPED.format(kinds=kinds)),
        _r(cat, 5, _SYMPTOM.format(kinds=kinds)),
    )


_TRAINING = (
    *_symptom_rules(C.DL_NAN_DIVERGENCE, "nonfinite_loss|nonfinite_gradients|loss_explosion"),
    *_symptom_rules(C.TRAIN_NO_LEARNING, "no_learning|plateau|slow_convergence"),
    *_symptom_rules(C.TRAIN_OVERFITTING, "overfitting"),
    *_symptom_rules(C.TRAIN_UNSTABLE, "oscillation|loss_spike|lr_out_of_range"),
    *_symptom_rules(
        C.TRAIN_GRADIENT_FLOW,
        "exploding_gradients|vanishing_gradients|dying_relu|saturated_activations",
    ),
    *_symptom_rules(
        C.TRAIN_RESOURCES, "throughput_collapse|memory_growth|gpu_memory_near_limit|time_budget"
    ),
)

_PREEMPTION = (
    _r(C.INFRA_PREEMPTION, 5, exc=("KeyboardInterrupt",)),
    _r(C.INFRA_PREEMPTION, 8, r"DUE TO TIME LIMIT|DUE TO PREEMPTION|job killed: walltime"),
    _r(C.INFRA_PREEMPTION, 7, r"(?-i:CANCELLED AT)|\bpreempt(?:ed|ion)\b"),
    _r(C.INFRA_PREEMPTION, 5, r"walltime[^\n]{0,30}(?:exceeded|limit)|wall-?clock (?:time )?limit"),
    _r(C.INFRA_PREEMPTION, 7, r"spot instance interruption|instance-action|termination notice|"
       r"maintenance event"),
    _r(C.INFRA_PREEMPTION, 6, r"Signal 15 \(SIGTERM\)|Received SIGTERM|Got SIGTERM|caught signal "
       r"15|\bSIGTERM\b"),
    _r(C.INFRA_PREEMPTION, 4, r"(?-i:^\s*Terminated\s*$)|\bevicted\b|Job (?:was )?(?:cancell?ed|"
       r"killed) by"),
    _r(C.INFRA_PREEMPTION, 5, r"(?-i:\bCANCELL?ED\b)|\bTIME LIMIT\b|exceeded (?:the )?(?:time|"
       r"run ?time) limit"),
    _r(C.INFRA_PREEMPTION, 4, r"(?:exit(?:ed)?(?: with)?(?: code| status)?|exitcode|return "
       r"code)\s*[:=]?\s*143\b|exitcode\s*:?\s*-15\b"),
    _r(C.INFRA_PREEMPTION, 4, r"\bSIGINT\b|\bNODE_FAIL\b|node failure"),
    _r(C.INFRA_PREEMPTION, 4.5, exit_codes=(143, -15), signals=(15,)),
    _r(C.INFRA_PREEMPTION, 3, exit_codes=(130, -2), signals=(2,)),
    _r(C.INFRA_PREEMPTION, 2.5, exit_codes=(124,)),
)

RULES: tuple[Rule, ...] = (
    *_DEPENDENCY, *_PATH, *_CONFIG, *_CODE, *_DATA, *_GPU_OOM, *_CPU_OOM, *_SHAPE, *_NAN,
    *_API, *_DISK, *_NETWORK, *_GPU_DRIVER, *_DISTRIBUTED, *_PREEMPTION, *_TRAINING,
)
# fmt: on
"""Every rule, grouped by category. Names (``"dl.gpu_oom#3"``) are stable within a release."""
