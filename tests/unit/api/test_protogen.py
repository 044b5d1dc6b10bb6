"""The codegen step on a copy of the repository: the stale check catches an edited contract, and the error
helpers follow the ``ErrorReason`` enums."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHAT_REASONS = Path("api/tidings/chat/v1/error_reason.proto")
ACCOUNT_REASONS = Path("api/tidings/account/v1/error_reason.proto")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The contracts and the generated packages, copied."""
    shutil.copytree(ROOT / "api", tmp_path / "api")
    for package in ("tidings",):
        shutil.copytree(
            ROOT / "src" / package, tmp_path / "src" / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tmp_path


def protogen(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "scripts" / "protogen.py"), "--root", str(tree), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def add_to_enum(path: Path, *lines: str) -> None:
    """Insert ``lines`` before the closing brace of the file's (last) enum."""
    text = path.read_text(encoding="utf-8")
    end = text.rindex("}")
    path.write_text(text[:end] + "".join(f"  {line}\n" for line in lines) + text[end:], encoding="utf-8")


def test_the_stale_check_catches_an_edited_contract_until_it_is_regenerated(tree: Path) -> None:
    assert protogen(tree, "--check").returncode == 0
    pins = "TOO_MANY_PINS = 99 [(tidings.errors.v1.code) = 409];"
    add_to_enum(tree / CHAT_REASONS, "// Too many pinned messages.", pins)

    stale = protogen(tree, "--check")
    assert stale.returncode == 1
    assert "tidings/api/chat/v1/errors.py" in stale.stderr
    assert "tidings/api/chat/v1/error_reason_pb2.py" in stale.stderr

    assert protogen(tree).returncode == 0
    helpers = (tree / "src/tidings/api/chat/v1/errors.py").read_text(encoding="utf-8")
    assert 'TOO_MANY_PINS = Reason(DOMAIN, "TOO_MANY_PINS", 409)' in helpers
    assert 'def too_many_pins(message: str, /, **metadata: str) -> TidingsError:\n    """Too many pinned' in helpers
    assert "def is_too_many_pins(error: BaseException | None) -> bool:" in helpers
    assert protogen(tree, "--check").returncode == 0


def test_a_hand_edited_helper_is_stale(tree: Path) -> None:
    helpers = tree / "src/tidings/api/account/v1/errors.py"
    helpers.write_text(helpers.read_text(encoding="utf-8").replace("404", "410"), encoding="utf-8")
    stale = protogen(tree, "--check")
    assert stale.returncode == 1
    assert "tidings/api/account/v1/errors.py" in stale.stderr


def test_a_value_without_a_code_takes_the_enums_default(tree: Path) -> None:
    path = tree / CHAT_REASONS
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "enum ErrorReason {\n", "enum ErrorReason {\n  option (tidings.errors.v1.default_code) = 403;\n"
        ),
        encoding="utf-8",
    )
    add_to_enum(path, "NOT_ALLOWED_HERE = 98;")
    assert protogen(tree).returncode == 0
    helpers = (tree / "src/tidings/api/chat/v1/errors.py").read_text(encoding="utf-8")
    assert 'NOT_ALLOWED_HERE = Reason(DOMAIN, "NOT_ALLOWED_HERE", 403)' in helpers
    assert 'CONVERSATION_NOT_FOUND = Reason(DOMAIN, "CONVERSATION_NOT_FOUND", 404)' in helpers


def test_a_value_without_any_code_is_refused(tree: Path) -> None:
    add_to_enum(tree / CHAT_REASONS, "NO_CODE = 97;")
    refused = protogen(tree)
    assert refused.returncode != 0
    assert "NO_CODE has no code" in refused.stderr


def test_a_reason_of_two_services_is_refused(tree: Path) -> None:
    add_to_enum(tree / ACCOUNT_REASONS, "CONVERSATION_NOT_FOUND = 96 [(tidings.errors.v1.code) = 404];")
    refused = protogen(tree)
    assert refused.returncode != 0
    assert "CONVERSATION_NOT_FOUND is in both" in refused.stderr


def test_a_removed_contract_takes_its_code_along_and_leaves_ours(tree: Path) -> None:
    (tree / "api/tidings/admin/v1/admin.proto").unlink()
    assert protogen(tree).returncode == 0
    assert not (tree / "src/tidings/api/admin/v1/admin_pb2.py").exists()
    assert (tree / "src/tidings/admin/__init__.py").read_text(encoding="utf-8").startswith('"""The operators')
