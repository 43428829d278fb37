"""Build the Lambda zips infra/terraform deploys: one per function, and the dependency layer.

    python infra/build_lambdas.py [--out build/lambda] [--runtime python3.12] [--functions-only]

* ``ingest.zip``, ``invoice-writer.zip``, ``query-api.zip``: the ``*.py`` files of the
  packages each function imports (see :data:`FUNCTIONS`), nothing else.
* ``layer.zip``: requirements-lambda.txt installed by pip for the Lambda platform
  (manylinux2014_x86_64, CPython of the runtime's version, wheels only) under ``python/``.
  It is rebuilt only when requirements-lambda.txt or the runtime change: the hash of
  what it was built from is kept beside it in ``layer.zip.sha256``.

Zips are reproducible (sorted entries, fixed timestamps and permissions), so Terraform's
``source_code_hash`` changes only when the code does.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "lambda"
REQUIREMENTS = ROOT / "requirements-lambda.txt"
DEFAULT_RUNTIME = "python3.12"  # infra/terraform: var.lambda_runtime
PLATFORM = "manylinux2014_x86_64"  # infra/terraform: architectures = ["x86_64"]

# Function key (infra/terraform local.functions, pipeline.settings.FUNCTION_ENV) ->
# (zip name, package directories it contains).
FUNCTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ingest": ("ingest.zip", ("pipeline", "ingest")),
    "invoice-writer": ("invoice-writer.zip", ("pipeline", "dynamo_models", "consumers")),
    "query-api": ("query-api.zip", ("pipeline", "dynamo_models", "query_api")),
}
LAYER_ZIP = "layer.zip"

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


class BuildError(RuntimeError):
    pass


def zip_names() -> list[str]:
    """Every zip infra/terraform reads from the build directory."""
    return [zip_name for zip_name, _ in FUNCTIONS.values()] + [LAYER_ZIP]


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


def _python_files(package_dir: Path) -> list[Path]:
    return [
        p for p in package_dir.rglob("*.py")
        if "__pycache__" not in p.relative_to(package_dir).parts
    ]


def build_function(key: str, out_dir: Path = DEFAULT_OUT, *, root: Path = ROOT) -> Path:
    """Zip the packages of function ``key``; returns the zip's path."""
    try:
        zip_name, packages = FUNCTIONS[key]
    except KeyError:
        raise BuildError(f"unknown function {key!r}; known: {', '.join(FUNCTIONS)}") from None
    files: list[tuple[str, Path]] = []
    for package in packages:
        package_dir = root / package
        if not (package_dir / "__init__.py").is_file():
            raise BuildError(f"{key}: package {package}/ not found under {root} (no __init__.py)")
        files += [(p.relative_to(root).as_posix(), p) for p in _python_files(package_dir)]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / zip_name
    _write_zip(path, files)
    return path


def python_version(runtime: str) -> str:
    match = re.fullmatch(r"python(3\.\d+)", runtime)
    if not match:
        raise BuildError(f"runtime {runtime!r} is not a Python runtime like python3.12")
    return match.group(1)


def _layer_fingerprint(requirements: Path, runtime: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"{runtime}\n{PLATFORM}\n".encode())
    digest.update(requirements.read_bytes())
    return digest.hexdigest()


def build_layer(
    out_dir: Path = DEFAULT_OUT, *, runtime: str = DEFAULT_RUNTIME, requirements: Path = REQUIREMENTS,
    force: bool = False,
) -> tuple[Path, bool]:
    """Build layer.zip unless it was built from the same requirements and runtime.

    Returns the zip's path and whether it was (re)built.
    """
    if not requirements.is_file():
        raise BuildError(f"{requirements} not found")
    path = out_dir / LAYER_ZIP
    marker = out_dir / (LAYER_ZIP + ".sha256")
    fingerprint = _layer_fingerprint(requirements, runtime)
    if not force and path.is_file() and marker.is_file() and marker.read_text().strip() == fingerprint:
        return path, False
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shopstream-layer-") as tmp:
        target = Path(tmp) / "python"
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--target", str(target), "--platform", PLATFORM, "--implementation", "cp",
            "--python-version", python_version(runtime), "--only-binary=:all:", "-r", str(requirements),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
            raise BuildError(f"pip could not build the layer from {requirements.name}:\n{tail}")
        files = [
            (p.relative_to(Path(tmp)).as_posix(), p) for p in target.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
        _write_zip(path, files)
    marker.write_text(fingerprint + "\n")
    return path, True


def build_all(
    out_dir: Path = DEFAULT_OUT, *, runtime: str = DEFAULT_RUNTIME, layer: bool = True, force_layer: bool = False,
    say=print,
) -> dict[str, Path]:
    """Build every function zip (and the layer); returns zip name -> path."""
    out_dir = Path(out_dir)
    built = {FUNCTIONS[key][0]: build_function(key, out_dir) for key in FUNCTIONS}
    lines = [f"  {name:<20} {path.stat().st_size / 1024:>9,.0f} KB" for name, path in built.items()]
    if layer:
        layer_path, rebuilt = build_layer(out_dir, runtime=runtime, force=force_layer)
        built[LAYER_ZIP] = layer_path
        note = "built" if rebuilt else "unchanged requirements, kept"
        lines.append(f"  {LAYER_ZIP:<20} {layer_path.stat().st_size / 1024:>9,.0f} KB  ({note})")
    say(f"lambda zips in {out_dir}:\n" + "\n".join(lines))
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Lambda zips that infra/terraform deploys.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    parser.add_argument("--runtime", default=DEFAULT_RUNTIME, help="Lambda runtime the layer is built for")
    parser.add_argument("--functions-only", action="store_true", help="skip the dependency layer")
    parser.add_argument("--force-layer", action="store_true", help="rebuild the layer even if unchanged")
    args = parser.parse_args(argv)
    try:
        build_all(args.out, runtime=args.runtime, layer=not args.functions_only, force_layer=args.force_layer)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
