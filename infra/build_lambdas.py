"""Build the Lambda zips infra/terraform deploys: one per function, and the dependency layers.

    python infra/build_lambdas.py [--out build/lambda] [--runtime python3.12] [--functions-only]
    python infra/build_lambdas.py --lock     # requirements-lambda*.txt -> requirements-lambda*.lock

* One zip per function (:data:`FUNCTIONS`), holding exactly the project modules its
  handler imports, followed transitively through the source (``import`` and ``from …
  import`` anywhere in a module, relative imports included), each with its packages'
  ``__init__.py``, plus declared package data (:data:`PACKAGE_DATA`). Nothing else: the
  ingest function carries no database code, and no function carries local-mode code
  (``devstack``, ``tests``, ``scripts``, ``bench``: importing one is a build error).
* One zip per dependency layer (:data:`LAYERS`): a hashed lock installed by pip for the
  Lambda platform (x86_64 manylinux wheels the runtime's glibc can load, CPython of the
  runtime's version, wheels only, ``--require-hashes``) under ``python/``. Each lock
  (``requirements-lambda*.lock``) is pip-compile's resolution of a requirements file
  with every artifact's sha256 (``--lock`` writes them; ``make lock``), so a layer is
  the same packages, byte for byte, wherever and whenever it is built; a lock that lags
  its requirements file, or lacks a dependency a locked package declares, is a build
  error. The distributions the Lambda runtime ships (:data:`RUNTIME_DISTRIBUTIONS`:
  boto3, botocore and theirs) are left out of the locks and the layers. A function gets
  only the layers whose packages it imports (:func:`function_layers`), so pyarrow, the
  largest by far, is in the archive writer's layers and nobody else's. A third-party
  import that neither the Lambda runtime nor a layer provides is a build error. A layer
  is rebuilt only when its lock or the runtime change: the hash of what it was built
  from is kept beside it in ``<layer>.sha256``.

Zips are reproducible (sorted entries, fixed timestamps and permissions), so Terraform's
``source_code_hash`` changes only when the code does.
"""
from __future__ import annotations

import argparse
import ast
import fnmatch
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "lambda"
DEFAULT_RUNTIME = "python3.12"  # infra/terraform: var.lambda_runtime
ARCHITECTURE = "x86_64"  # infra/terraform: architectures = ["x86_64"]


# NamedTuples, not dataclasses: devstack/terraform.py and the tests load this file by path,
# without registering it in sys.modules, which dataclasses need.
class Function(NamedTuple):
    zip: str
    handler_module: str  # infra/terraform: handler = "<handler_module>.lambda_handler"


class Layer(NamedTuple):
    zip: str
    requirements: str          # file at the repository root: what the layer needs, pinned
    lock: str                  # file at the repository root: pip-compile's hashed resolution of it
    provides: frozenset[str]   # top-level import names it puts on the path
    exclude: tuple[str, ...] = ()  # fnmatch patterns (relative to python/) left out of the zip


# Function key (infra/terraform local.functions, pipeline.settings.FUNCTION_ENV; the user pool's
# trigger in auth.tf) -> its zip and handler.
FUNCTIONS: dict[str, Function] = {
    "ingest": Function("ingest.zip", "ingest.handler"),
    "invoice-writer": Function("invoice-writer.zip", "consumers.invoices.handler"),
    "query-api": Function("query-api.zip", "query_api.handler"),
    # AWS mode only, not in local.functions: the user pool's trigger (infra/terraform/auth.tf)
    "pre-token-generation": Function("pre-token-generation.zip", "identity.handler"),
    "archive-writer": Function("archive-writer.zip", "consumers.archive.handler"),
    "firehose-transform": Function("firehose-transform.zip", "firehose.handler"),
    "order-notifier": Function("order-notifier.zip", "consumers.notifications.handler"),
    "warehouse-merge": Function("warehouse-merge.zip", "warehouse.merge.handler"),
    "batch": Function("batch.zip", "batch.handler"),
}

# Layer key (infra/terraform local.layers) -> its zip, requirements and what it provides.
LAYERS: dict[str, Layer] = {
    "deps": Layer("layer.zip", "requirements-lambda.txt", "requirements-lambda.lock",
                  frozenset({"aws_kinesis_agg", "six", "google", "pynamodb", "aws_lambda_powertools"})),
    # pyarrow unpacks to 166 MB, most of it parts the archive never loads; without them the
    # zip stays under Lambda's 50 MB upload limit and both layers far under 250 MB unpacked
    # (tests/unit/test_build_lambdas.py writes and reads Parquet with what is left).
    "arrow": Layer("arrow-layer.zip", "requirements-lambda-arrow.txt", "requirements-lambda-arrow.lock",
                   frozenset({"pyarrow"}), exclude=(
        "pyarrow/include/*", "pyarrow/src/*", "pyarrow/tests/*", "pyarrow/*.pxd", "pyarrow/*.pyx",
        "pyarrow/libarrow_flight.so*", "pyarrow/_flight.*", "pyarrow/flight.py",  # Arrow Flight RPC
        "pyarrow/libarrow_s3.so*", "pyarrow/_s3fs.*",  # pyarrow's own S3 client: S3 goes through boto3
        "pyarrow/libarrow_python.so", "pyarrow/libarrow_python.so.*.*.*",  # link-time copies of the .so.N
        "pyarrow/libarrow_python_flight.so*",
    )),
}

# What the Lambda Python runtime itself provides beyond the standard library: import names,
# and the distributions they come from.
RUNTIME_PROVIDES = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3"})
# Left out of the locks (pip-compile --unsafe-package) and so of the layers, although
# pynamodb needs botocore and aws-lambda-powertools jmespath. Every Python runtime ships
# boto3 with the botocore it was released with; a layer's botocore comes first on sys.path
# and would shadow it, so the runtime's boto3, which the functions call, would run on a
# botocore it was never paired with (boto3 pins botocore to its own release line), and
# botocore alone was 16 of the deps layer's 18 MB. What these packages need of botocore
# and jmespath (pynamodb: botocore>=1.12.54; aws-lambda-powertools: jmespath>=1.0.1,<2)
# every supported runtime's copy has. The cost: in AWS the functions run on the
# runtime's boto3/botocore, not the version requirements.txt pins for local runs.
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3")
# Project packages a function may carry, and those it never may.
PROJECT_PACKAGES = frozenset({"pipeline", "ingest", "consumers", "dynamo_models", "query_api", "firehose", "warehouse",
                              "identity", "batch"})
LOCAL_ONLY = frozenset({"devstack", "tests", "scripts", "bench", "infra"})
# Non-Python files a module reads at run time: module -> glob patterns relative to the root.
PACKAGE_DATA: dict[str, tuple[str, ...]] = {"warehouse.statements": ("warehouse/sql/**/*.sql",)}

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


class BuildError(RuntimeError):
    pass


def zip_names() -> list[str]:
    """Every zip infra/terraform reads from the build directory."""
    return [f.zip for f in FUNCTIONS.values()] + [layer.zip for layer in LAYERS.values()]


# ── what a handler imports ─────────────────────────────────────────────────────


class Closure(NamedTuple):
    """The project modules (as files) and third-party top-level names a handler needs."""

    files: tuple[Path, ...]
    third_party: frozenset[str]


def _module_file(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _imported(path: Path, module: str, root: Path) -> set[str]:
    """Absolute names of the modules ``path`` (module ``module``) may import."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise BuildError(f"{path.relative_to(root)} does not parse: {exc}") from exc
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level - 1 > len(parts) - 1:
                    raise BuildError(f"{path.relative_to(root)}: relative import beyond the top-level package")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            names.add(source)
            # ``from package import module`` imports a module too
            names.update(f"{source}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def closure(handler_module: str, root: Path = ROOT) -> Closure:
    """Every project module ``handler_module`` imports, transitively, and the third-party
    top-level names imported on the way."""
    seen: dict[str, Path] = {}
    third_party: set[str] = set()
    pending = [handler_module]
    stdlib = sys.stdlib_module_names
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        top = module.split(".")[0]
        if top in LOCAL_ONLY:
            raise BuildError(f"{handler_module} imports {module}, which is local-mode code and never deployed")
        if top not in PROJECT_PACKAGES:
            if top not in stdlib and top != "__future__":
                third_party.add(top)
            continue
        path = _module_file(module, root)
        if path is None:
            # ``from package import name`` where name is not a module: nothing more to follow
            if module == handler_module or _module_file(module.rpartition(".")[0], root) is None:
                raise BuildError(f"{handler_module}: module {module} not found under {root}")
            continue
        seen[module] = path
        parts = module.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
        pending.extend(_imported(path, module, root))
    files = set(seen.values())
    for module, patterns in PACKAGE_DATA.items():
        if module in seen:
            for pattern in patterns:
                files.update(p for p in root.glob(pattern) if p.is_file())
    return Closure(tuple(sorted(files)), frozenset(third_party))


def function_layers(key: str, root: Path = ROOT) -> list[str]:
    """The layer keys function ``key`` needs (in :data:`LAYERS` order)."""
    needed = closure(FUNCTIONS[key].handler_module, root).third_party - RUNTIME_PROVIDES
    layers = [name for name, layer in LAYERS.items() if layer.provides & needed]
    missing = needed - set().union(*(LAYERS[name].provides for name in layers))
    if missing:
        raise BuildError(f"{key} imports {', '.join(sorted(missing))}, which neither the Lambda runtime nor a layer "
                         f"provides (add it to a requirements file of LAYERS, then `make lock`)")
    return layers


# ── zips ───────────────────────────────────────────────────────────────────────


def _write_zip(path: Path, files: list[tuple[str, Path]]) -> None:
    """Write ``(name in zip, file)`` pairs sorted by name, with fixed metadata, atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # concurrent builds never share one
    with zipfile.ZipFile(tmp, "w") as archive:
        for name, source in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = os.access(source, os.X_OK)
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.create_system = 3  # unix, so the permissions above are honoured
            archive.writestr(info, source.read_bytes(), compresslevel=9)
    tmp.replace(path)


def build_function(key: str, out_dir: Path = DEFAULT_OUT, *, root: Path = ROOT) -> Path:
    """Zip what function ``key``'s handler imports; returns the zip's path."""
    try:
        function = FUNCTIONS[key]
    except KeyError:
        raise BuildError(f"unknown function {key!r}; known: {', '.join(FUNCTIONS)}") from None
    needed = closure(function.handler_module, root)
    files = [(p.relative_to(root).as_posix(), p) for p in needed.files]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / function.zip
    _write_zip(path, files)
    return path


def python_version(runtime: str) -> str:
    match = re.fullmatch(r"python(3\.\d+)", runtime)
    if not match:
        raise BuildError(f"runtime {runtime!r} is not a Python runtime like python3.12")
    return match.group(1)


def platforms(runtime: str) -> list[str]:
    """The wheel platforms a runtime can load: python3.12 and later run on Amazon Linux 2023
    (glibc 2.34), so manylinux_2_28 wheels too (pyarrow publishes no older ones); python3.11
    and before run on Amazon Linux 2 (glibc 2.26)."""
    minor = int(python_version(runtime).split(".")[1])
    tags = [f"manylinux2014_{ARCHITECTURE}"]
    if minor >= 12:
        tags.append(f"manylinux_2_28_{ARCHITECTURE}")
    return tags


def _layer_fingerprint(lock: Path, runtime: str, exclude: tuple[str, ...] = ()) -> str:
    digest = hashlib.sha256()
    digest.update(f"{runtime}\n{' '.join(platforms(runtime))}\n{' '.join(exclude)}\n".encode())
    digest.update(lock.read_bytes())
    return digest.hexdigest()


def excluded(relative: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(relative, pattern) for pattern in patterns)


# ── locks ──────────────────────────────────────────────────────────────────────


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """The ``name==version`` lines of a requirements file or lock: canonical name -> version."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#\\]+)", line)
        if match:
            found[_canonical(match.group(1))] = match.group(2)
    return found


def check_lock(requirements: Path, lock: Path) -> None:
    """A lock is current when it pins every requirement at the requirement's version and
    holds nothing the Lambda runtime provides."""
    if not lock.is_file():
        raise BuildError(f"{lock.name} not found: run `make lock` (python infra/build_lambdas.py --lock)")
    wanted, locked = pins(requirements), pins(lock)
    stale = sorted(f"{name}=={version}" for name, version in wanted.items() if locked.get(name) != version)
    if stale:
        raise BuildError(f"{lock.name} does not pin {', '.join(stale)} as {requirements.name} does: "
                         "run `make lock` (python infra/build_lambdas.py --lock)")
    shadowing = sorted(set(locked) & set(RUNTIME_DISTRIBUTIONS))
    if shadowing:
        raise BuildError(f"{lock.name} pins {', '.join(shadowing)}, which the Lambda runtime provides "
                         "(RUNTIME_DISTRIBUTIONS)")


def lock_command(key: str) -> list[str]:
    """pip-compile's command line for layer ``key``'s lock (run from the repository root)."""
    layer = LAYERS[key]
    return [
        sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes", "--strip-extras",
        "--no-emit-index-url", "--no-emit-find-links",
        *(arg for name in RUNTIME_DISTRIBUTIONS for arg in ("--unsafe-package", name)),
        "--output-file", layer.lock, layer.requirements,
    ]


def write_locks(*, say=print) -> None:
    """(Re)write every layer's lock from its requirements file (pip-compile keeps the
    versions a lock already has unless the requirements file moves them)."""
    for key, layer in LAYERS.items():
        env = {**os.environ, "CUSTOM_COMPILE_COMMAND": "make lock"}
        result = subprocess.run(lock_command(key), cwd=ROOT, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
            raise BuildError(f"pip-compile could not lock {layer.requirements}:\n{tail}")
        check_lock(ROOT / layer.requirements, ROOT / layer.lock)
        say(f"  {layer.lock:<32} {len(pins(ROOT / layer.lock))} packages, from {layer.requirements}")


def _marker_environment(runtime: str) -> dict[str, str]:
    """PEP 508 marker values of the Lambda runtime (for the dependencies a package declares)."""
    version = python_version(runtime)
    return {"python_version": version, "python_full_version": f"{version}.0", "os_name": "posix",
            "sys_platform": "linux", "platform_system": "Linux", "platform_machine": ARCHITECTURE,
            "platform_python_implementation": "CPython", "implementation_name": "cpython", "extra": ""}


def missing_dependencies(target: Path, runtime: str) -> list[str]:
    """What the distributions installed under ``target`` declare they need, for the
    runtime, that is neither installed there nor provided by the Lambda runtime."""
    from importlib.metadata import distributions

    from packaging.requirements import Requirement

    environment = _marker_environment(runtime)
    installed = {_canonical(dist.metadata["Name"]): dist for dist in distributions(path=[str(target)])}
    available = set(installed) | set(RUNTIME_DISTRIBUTIONS)
    missing = []
    for name, dist in sorted(installed.items()):
        for text in dist.requires or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                if _canonical(requirement.name) not in available:
                    missing.append(f"{name} needs {requirement}")
    return missing


def build_layer(
    out_dir: Path = DEFAULT_OUT, *, key: str = "deps", runtime: str = DEFAULT_RUNTIME, lock: Path | None = None,
    force: bool = False,
) -> tuple[Path, bool]:
    """Build layer ``key``'s zip from its lock unless it was built from the same lock and runtime.

    Returns the zip's path and whether it was (re)built.
    """
    layer = LAYERS[key]
    if lock is None:
        lock = ROOT / layer.lock
        check_lock(ROOT / layer.requirements, lock)
    elif not lock.is_file():
        raise BuildError(f"{lock} not found")
    path = out_dir / layer.zip
    marker = out_dir / (layer.zip + ".sha256")
    fingerprint = _layer_fingerprint(lock, runtime, layer.exclude)
    if not force and path.is_file() and marker.is_file() and marker.read_text().strip() == fingerprint:
        return path, False
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shopstream-layer-") as tmp:
        target = Path(tmp) / "python"
        # --no-deps: the lock is the whole closure but for what the runtime provides (which
        # --require-hashes would otherwise demand be pinned); missing_dependencies checks it.
        # --no-compile, and no .pyc in the zip: bytecode is specific to the interpreter's
        # minor version, and this build's Python need not be the runtime's (a 3.11 venv
        # building for python3.12 would ship .pyc the runtime ignores); the zip would also
        # vary with the build machine.
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--require-hashes", "--no-deps",
            "--target", str(target), *(arg for tag in platforms(runtime) for arg in ("--platform", tag)),
            "--implementation", "cp",
            "--python-version", python_version(runtime), "--only-binary=:all:", "-r", str(lock),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
            raise BuildError(f"pip could not build the {key} layer from {lock.name}:\n{tail}")
        top_level = {p.name.removesuffix(".py") for p in target.iterdir()} if target.is_dir() else set()
        absent = layer.provides - top_level
        if absent:
            raise BuildError(f"the {key} layer from {lock.name} does not provide {', '.join(sorted(absent))} "
                             "(LAYERS declares it)")
        shadowing = top_level & RUNTIME_PROVIDES
        if shadowing:
            raise BuildError(f"the {key} layer from {lock.name} would shadow the Lambda runtime's "
                             f"{', '.join(sorted(shadowing))}")
        missing = missing_dependencies(target, runtime)
        if missing:
            raise BuildError(f"{lock.name} lacks what its packages need: {'; '.join(missing)} "
                             "(run `make lock`)")
        files = [
            (p.relative_to(Path(tmp)).as_posix(), p) for p in target.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
            and not excluded(p.relative_to(target).as_posix(), layer.exclude)
        ]
        _write_zip(path, files)
    marker.write_text(fingerprint + "\n")
    return path, True


def build_all(
    out_dir: Path = DEFAULT_OUT, *, runtime: str = DEFAULT_RUNTIME, layer: bool = True, force_layer: bool = False,
    say=print,
) -> dict[str, Path]:
    """Build every function zip (and the layers); returns zip name -> path."""
    out_dir = Path(out_dir)
    built = {FUNCTIONS[key].zip: build_function(key, out_dir) for key in FUNCTIONS}
    lines = [f"  {FUNCTIONS[key].zip:<24} {built[FUNCTIONS[key].zip].stat().st_size / 1024:>9,.0f} KB"
             f"  layers: {', '.join(function_layers(key)) or '-'}" for key in FUNCTIONS]
    if layer:
        for key, spec in LAYERS.items():
            layer_path, rebuilt = build_layer(out_dir, key=key, runtime=runtime, force=force_layer)
            built[spec.zip] = layer_path
            note = "built" if rebuilt else "unchanged lock, kept"
            lines.append(f"  {spec.zip:<24} {layer_path.stat().st_size / 1024:>9,.0f} KB  ({note})")
    say(f"lambda zips in {out_dir}:\n" + "\n".join(lines))
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Lambda zips that infra/terraform deploys.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    parser.add_argument("--runtime", default=DEFAULT_RUNTIME, help="Lambda runtime the layers are built for")
    parser.add_argument("--functions-only", action="store_true", help="skip the dependency layers")
    parser.add_argument("--force-layer", action="store_true", help="rebuild the layers even if unchanged")
    parser.add_argument("--lock", action="store_true",
                        help="only (re)write the layers' hashed locks from their requirements files (pip-compile)")
    args = parser.parse_args(argv)
    try:
        if args.lock:
            write_locks()
            return 0
        build_all(args.out, runtime=args.runtime, layer=not args.functions_only, force_layer=args.force_layer)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
