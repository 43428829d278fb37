"""Terraform for local mode: apply infra/terraform to the emulator, read its outputs.

The module is the one that deploys to AWS; local mode only sets ``emulator_endpoint``
(and where the Lambda zips are), and keeps everything Terraform writes for it under the
given state directory: the provider cache (``TF_DATA_DIR``), the state file, the
variables file and, when the provider comes from a local mirror, the CLI configuration.
So local runs never touch an AWS deployment's ``.terraform/`` or state.

Offline machines: Terraform normally downloads hashicorp/aws from registry.terraform.io.
If ``SHOPSTREAM_TF_PLUGIN_MIRROR`` names a directory, or a filesystem mirror holding
``registry.terraform.io/hashicorp/aws`` is found in one of :data:`WELL_KNOWN_MIRRORS`,
the provider is installed from there instead.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODULE_DIR = ROOT / "infra" / "terraform"
BUILD_DIR = ROOT / "build" / "lambda"
PROVIDER = "registry.terraform.io/hashicorp/aws"
ENV_MIRROR = "SHOPSTREAM_TF_PLUGIN_MIRROR"
WELL_KNOWN_MIRRORS = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "/usr/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
)
INSTALL_HINT = (
    "install Terraform >= 1.11 and put `terraform` on PATH: https://developer.hashicorp.com/terraform/install "
    "(macOS: `brew tap hashicorp/tap && brew install hashicorp/tap/terraform`; Linux: unzip the release "
    "binary into /usr/local/bin)"
)
STATE_FILE = "terraform.tfstate"
VARS_FILE = "emulator.tfvars.json"
CLI_CONFIG_FILE = "terraform.rc"

Say = Callable[[str], None]


class TerraformError(RuntimeError):
    pass


class ApplyStuck(TerraformError):
    """The emulator's intermittent Lambda CreateFunction hang: the provider waits minutes
    for an answer, then its retry is refused as 'already exists'. Starting over works."""


# ── finding terraform and the provider ─────────────────────────────────────────


def find_terraform() -> str:
    path = shutil.which("terraform")
    if path is None:
        raise TerraformError(f"terraform was not found on PATH; {INSTALL_HINT}")
    return path


def find_provider_mirror(environ: dict[str, str] | None = None) -> Path | None:
    """A filesystem mirror holding hashicorp/aws, or None to let terraform download it."""
    env = os.environ if environ is None else environ
    configured = env.get(ENV_MIRROR)
    if configured:
        mirror = Path(configured).expanduser()
        if not (mirror / PROVIDER).is_dir():
            raise TerraformError(f"{ENV_MIRROR}={configured} holds no {PROVIDER}/<version>/<platform>/ directory")
        return mirror.resolve()
    for candidate in WELL_KNOWN_MIRRORS:
        mirror = Path(candidate).expanduser()
        if (mirror / PROVIDER).is_dir():
            return mirror.resolve()
    return None


def _cli_config(mirror: Path) -> str:
    return (
        "# Written by devstack/terraform.py: hashicorp/aws from a local mirror, the rest as usual.\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror))}\n"
        f"    include = [{json.dumps(PROVIDER)}]\n"
        "  }\n"
        "  direct {\n"
        f"    exclude = [{json.dumps(PROVIDER)}]\n"
        "  }\n"
        "}\n"
    )


# ── running terraform ──────────────────────────────────────────────────────────

_PROGRESS = re.compile(
    r"^(?P<address>\S.*?): (?P<what>Creation|Modifications|Destruction) complete after (?P<took>\S+)"
)
_VERBS = {"Creation": "created", "Modifications": "updated", "Destruction": "destroyed"}


def _compact(line: str) -> str | None:
    """The line worth showing of terraform's output, shortened, or None."""
    match = _PROGRESS.match(line)
    if match:
        return f"    {_VERBS[match['what']]:<9} {match['address']} ({match['took']})"
    if line.startswith(("Apply complete!", "Destroy complete!", "No changes.", "Plan:")):
        return f"    {line}"
    return None


@dataclass
class _Workspace:
    """Where local mode keeps what terraform writes, and the environment it runs with."""

    state_dir: Path
    endpoint_url: str
    terraform: str
    mirror: Path | None

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def vars_file(self) -> Path:
        return self.state_dir / VARS_FILE

    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items()
            # never let a local apply pick up a real profile or session
            if not k.startswith(("AWS_", "TF_VAR_")) and k not in ("TF_CLI_CONFIG_FILE", "TF_DATA_DIR", "TF_CLI_ARGS")
            and not k.startswith("TF_CLI_ARGS_")
        }
        env.update({
            "TF_DATA_DIR": str(self.state_dir / ".terraform"),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",  # no version check against checkpoint-api.hashicorp.com
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            # any service the provider block does not list still goes to the emulator
            "AWS_ENDPOINT_URL": self.endpoint_url,
        })
        if self.mirror is not None:
            env["TF_CLI_CONFIG_FILE"] = str(self.state_dir / CLI_CONFIG_FILE)
        elif os.environ.get("TF_CLI_CONFIG_FILE") and Path(os.environ["TF_CLI_CONFIG_FILE"]).is_file():
            env["TF_CLI_CONFIG_FILE"] = os.environ["TF_CLI_CONFIG_FILE"]
        return env

    def run(self, *args: str, say: Say | None = None, ok_codes: tuple[int, ...] = (0,),
            stuck_after: float | None = None) -> tuple[int, str]:
        """Run ``terraform -chdir=<module> <args>``; show compact progress; raise with the tail on failure.

        ``stuck_after``: a Lambda function still "creating" after this many seconds is the
        emulator's intermittent CreateFunction hang (it ends minutes later in a 409 on the
        provider's retry): terraform is stopped and :class:`ApplyStuck` raised."""
        command = [self.terraform, f"-chdir={MODULE_DIR}", *args]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env(), text=True, bufsize=1,
        )
        lines: list[str] = []
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            if say and (shown := _compact(line)):
                say(shown)
            stuck = _LAMBDA_STILL_CREATING.match(line) if stuck_after is not None else None
            if stuck and int(stuck["m"] or 0) * 60 + int(stuck["s"]) > stuck_after:
                process.kill()
                process.wait()
                raise ApplyStuck(f"terraform {args[0]}: {stuck['resource']} still being created after "
                                 f"{int(stuck['m'] or 0)}m{stuck['s']}s (it takes seconds)")
        code = process.wait()
        if code not in ok_codes:
            text = "\n".join(lines[-40:]).strip()
            if stuck_after is not None and "ResourceConflictException" in text and "already exist" in text:
                raise ApplyStuck(f"terraform {args[0]} failed: a Lambda function created by this apply 'already "
                                 f"exists' (its first CreateFunction hung):\n{text}")
            raise TerraformError(f"terraform {args[0]} failed (exit code {code}); the end of its output:\n{text}")
        return code, "\n".join(lines)


_LAMBDA_STILL_CREATING = re.compile(
    r"^(?P<resource>aws_lambda_function\S*): Still creating\.\.\. \[(?:(?P<m>\d+)m)?(?P<s>\d+)s elapsed\]")
LAMBDA_STUCK_SECONDS = 120.0  # a function is created in 20-40 s on a loaded 2-core machine


def _workspace(endpoint_url: str, state_dir: str | os.PathLike[str]) -> _Workspace:
    workspace = _Workspace(Path(state_dir).resolve(), endpoint_url.rstrip("/"), find_terraform(), find_provider_mirror())
    workspace.state_dir.mkdir(parents=True, exist_ok=True)
    if workspace.mirror is not None:
        (workspace.state_dir / CLI_CONFIG_FILE).write_text(_cli_config(workspace.mirror))
    return workspace


def _declared_variables() -> set[str]:
    return set(re.findall(r'^variable\s+"([^"]+)"', (MODULE_DIR / "variables.tf").read_text(), re.M))


def _write_vars(workspace: _Workspace, variables: dict[str, Any] | None, build_dir: Path) -> None:
    values: dict[str, Any] = {"emulator_endpoint": workspace.endpoint_url, "lambda_build_dir": str(build_dir)}
    values.update(variables or {})
    unknown = sorted(set(values) - _declared_variables())
    if unknown:
        raise TerraformError(f"infra/terraform declares no variable {', '.join(unknown)}")
    workspace.vars_file.write_text(json.dumps(values, indent=2) + "\n")


def _init_if_needed(workspace: _Workspace, say: Say) -> None:
    """``terraform init`` unless this state dir was initialised for the same providers."""
    fingerprint = hashlib.sha256(
        (MODULE_DIR / "versions.tf").read_bytes() + str(workspace.mirror).encode()
    ).hexdigest()
    marker = workspace.state_dir / ".terraform" / "shopstream-init"
    lock_file = MODULE_DIR / ".terraform.lock.hcl"
    if marker.is_file() and marker.read_text() == fingerprint and lock_file.is_file():
        return
    source = f"from the mirror {workspace.mirror}" if workspace.mirror else "from registry.terraform.io"
    say(f"    terraform init (hashicorp/aws {source})")
    workspace.run("init", "-input=false", "-no-color")
    marker.write_text(fingerprint)


def _load_build_lambdas():
    spec = importlib.util.spec_from_file_location("shopstream_build_lambdas", ROOT / "infra" / "build_lambdas.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_lambdas(build_dir: Path = BUILD_DIR, *, runtime: str | None = None, say: Say = print) -> None:
    builder = _load_build_lambdas()
    try:
        builder.build_all(build_dir, runtime=runtime or builder.DEFAULT_RUNTIME,
                          say=lambda text: say("    " + text.replace("\n", "\n    ")))
    except builder.BuildError as exc:
        raise TerraformError(f"building the Lambda zips failed: {exc}") from exc


def _prepare(
    endpoint_url: str, state_dir: str | os.PathLike[str], variables: dict[str, Any] | None, build_dir: Path,
    say: Say, *, build: bool,
) -> _Workspace:
    workspace = _workspace(endpoint_url, state_dir)
    if build:
        build_lambdas(build_dir, runtime=(variables or {}).get("lambda_runtime"), say=say)
    else:
        missing = [name for name in _load_build_lambdas().zip_names() if not (build_dir / name).is_file()]
        if missing:
            raise TerraformError(f"{', '.join(missing)} not found in {build_dir}; run `python infra/build_lambdas.py`")
    _write_vars(workspace, variables, build_dir)
    _init_if_needed(workspace, say)
    return workspace


def _common_args(workspace: _Workspace) -> list[str]:
    return ["-input=false", "-no-color", f"-state={workspace.state_file}", f"-var-file={workspace.vars_file}"]


def outputs(endpoint_url: str, state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``terraform output -json`` of the local state, as {name: value}."""
    return _outputs(_workspace(endpoint_url, state_dir))


def _outputs(workspace: _Workspace) -> dict[str, Any]:
    _, text = workspace.run("output", "-json", "-no-color", f"-state={workspace.state_file}")
    try:
        return {name: entry["value"] for name, entry in json.loads(text).items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise TerraformError(f"terraform output -json printed something else than outputs:\n{text[-2000:]}") from exc


def apply_to_emulator(
    endpoint_url: str, state_dir: str | os.PathLike[str], *, variables: dict[str, Any] | None = None,
    say: Say = print, build_dir: Path = BUILD_DIR, build: bool = True,
) -> dict[str, Any]:
    """Build the Lambda zips (unless ``build=False``: use those in ``build_dir``), apply
    infra/terraform to the emulator, return the outputs."""
    started = time.monotonic()
    workspace = _prepare(endpoint_url, state_dir, variables, Path(build_dir), say, build=build)
    workspace.run("apply", "-auto-approve", *_common_args(workspace), say=say, stuck_after=LAMBDA_STUCK_SECONDS)
    result = _outputs(workspace)
    say(f"    terraform apply took {time.monotonic() - started:.1f}s")
    return result


def plan_has_changes(
    endpoint_url: str, state_dir: str | os.PathLike[str], *, variables: dict[str, Any] | None = None,
    say: Say = print, build_dir: Path = BUILD_DIR, build: bool = True,
) -> tuple[bool, str]:
    """``terraform plan`` against the emulator: whether anything would change, and the plan text."""
    workspace = _prepare(endpoint_url, state_dir, variables, Path(build_dir), say, build=build)
    code, text = workspace.run("plan", "-detailed-exitcode", *_common_args(workspace), say=say, ok_codes=(0, 2))
    return code == 2, text


def destroy(
    endpoint_url: str, state_dir: str | os.PathLike[str], *, variables: dict[str, Any] | None = None,
    say: Say = print, build_dir: Path = BUILD_DIR, build: bool = True,
) -> None:
    """Destroy what the local state holds (Terraform hashes the zips, so they must exist)."""
    workspace = _prepare(endpoint_url, state_dir, variables, Path(build_dir), say, build=build)
    workspace.run("destroy", "-auto-approve", *_common_args(workspace), say=say)


def run_module_tests(state_dir: str | os.PathLike[str], *, variables: dict[str, Any] | None = None,
                     files: tuple[str, ...] = (), say: Say = print) -> tuple[bool, str]:
    """``terraform test`` of infra/terraform (its ``tests/*.tftest.hcl``: plans of AWS mode
    and emulator mode against a mocked provider, offline), or only of ``files`` (e.g.
    ``tests/emulator_mode.tftest.hcl``); returns whether every run passed, and the output."""
    workspace = _workspace("http://127.0.0.1:9", state_dir)  # the tests mock the provider: no endpoint is used
    _init_if_needed(workspace, say)
    args = [f"-var={name}={value}" for name, value in (variables or {}).items()]
    args += [f"-filter={name}" for name in files]
    code, text = workspace.run("test", "-no-color", *args, ok_codes=(0, 1))
    return code == 0, text


def plan_aws_offline(state_dir: str | os.PathLike[str], *, variables: dict[str, Any], say: Say = print) -> dict[str, Any]:
    """``terraform plan`` of AWS mode (no emulator) with fake credentials and nowhere to
    connect: ``skip_aws_checks`` makes the provider call nothing before planning, and
    ``account_id``, ``warehouse_vpc_id`` and ``warehouse_subnet_ids`` in ``variables``
    replace the only lookups. Every AWS endpoint, and any proxy, is a closed local port,
    so a call to AWS fails rather than succeeds quietly. Returns ``terraform show -json``
    of the saved plan."""
    workspace = _workspace("http://127.0.0.1:9", state_dir)
    _init_if_needed(workspace, say)
    values = {"emulator_endpoint": None, "skip_aws_checks": True, **variables}
    unknown = sorted(set(values) - _declared_variables())
    if unknown:
        raise TerraformError(f"infra/terraform declares no variable {', '.join(unknown)}")
    vars_file = workspace.state_dir / "aws-offline.tfvars.json"
    vars_file.write_text(json.dumps(values, indent=2) + "\n")
    closed = "http://127.0.0.1:9"
    offline = _Workspace(workspace.state_dir, closed, workspace.terraform, workspace.mirror)
    env = offline.env()
    env.update({"HTTPS_PROXY": closed, "HTTP_PROXY": closed, "NO_PROXY": "", "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_MAX_ATTEMPTS": "1", "AWS_ACCESS_KEY_ID": "AKIAOFFLINEPLAN00000", "AWS_SECRET_ACCESS_KEY": "offline"})
    offline.env = lambda: env  # type: ignore[method-assign]
    plan_file = workspace.state_dir / "aws-offline.tfplan"
    offline.run("plan", "-input=false", "-no-color", "-lock=false", "-refresh=false",
                f"-state={workspace.state_dir / 'aws-offline.tfstate'}", f"-var-file={vars_file}", f"-out={plan_file}", say=say)
    _, text = offline.run("show", "-json", "-no-color", str(plan_file))
    return json.loads(text)
