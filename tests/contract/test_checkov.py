"""infra/terraform passes checkov's static scan (offline, ``--skip-download``): every check
passes or is skipped inline, next to its resource, with ``#checkov:skip=CKV_...:<reason>``.

checkov lives in its own virtualenv (``.venv-checkov``, made by ``make venv`` from
requirements-checkov.txt: it pins libraries the project's requirements cannot share);
``SHOPSTREAM_CHECKOV`` may name another checkov executable."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

TERRAFORM = ROOT / "infra" / "terraform"
PINNED = re.search(r"^checkov==(\S+)", (ROOT / "requirements-checkov.txt").read_text(), re.M).group(1)


def _checkov() -> str:
    candidates = [os.environ.get("SHOPSTREAM_CHECKOV"), str(ROOT / ".venv-checkov" / "bin" / "checkov"), shutil.which("checkov")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("checkov is not installed: `make venv` makes .venv-checkov from requirements-checkov.txt "
                "(or set SHOPSTREAM_CHECKOV to a checkov executable)")


@pytest.fixture(scope="module")
def scan() -> dict:
    checkov = _checkov()
    version = subprocess.run([checkov, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert version == PINNED, f"checkov {version} found, requirements-checkov.txt pins {PINNED}"
    result = subprocess.run(
        [checkov, "--directory", str(TERRAFORM), "--framework", "terraform", "--skip-download",
         "--compact", "--output", "json"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.returncode in (0, 1), result.stderr[-4000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def test_no_check_fails(scan):
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): {c['check_name']}"
              for c in scan["results"].get("failed_checks", [])]
    assert not failed, "checkov checks failing on infra/terraform:\n" + "\n".join(failed)
    assert scan["summary"]["parsing_errors"] == 0
    assert scan["summary"]["passed"] > 100


def test_every_skip_says_why(scan):
    skipped = scan["results"].get("skipped_checks", [])
    def reason(check: dict) -> str:
        return ((check.get("check_result") or {}).get("suppress_comment") or "").strip()

    unexplained = [f"{c['check_id']} {c['resource']}" for c in skipped if len(reason(c)) < 40]
    assert not unexplained, "skipped without a reason: " + ", ".join(unexplained)


def test_every_inline_skip_is_still_needed(scan):
    # a skip whose check now passes (or no longer applies) would hide a future failure
    written = {(m.group(1), path.name) for path in TERRAFORM.glob("*.tf")
               for m in re.finditer(r"#checkov:skip=(CKV2?_AWS_\d+):", path.read_text())}
    used = {(c["check_id"], Path(c["file_path"]).name) for c in scan["results"].get("skipped_checks", [])}
    assert written - used == set()
