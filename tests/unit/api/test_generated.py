"""The generated helpers agree with the contracts: one constructor and one test per reason, with its code."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest
from google.protobuf.descriptor import EnumDescriptor

import tidings
from tidings.api.account.v1 import errors as account_errors
from tidings.api.chat.v1 import errors as chat_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.api.errors.v1 import errors_pb2
from tidings.pkg import errors
from tidings.pkg.errors import TidingsError


def reason_enums() -> list[EnumDescriptor]:
    """Every ErrorReason enum among the generated contracts, found without asking the generator."""
    found = []
    for module_info in pkgutil.walk_packages(tidings.__path__, "tidings."):
        if module_info.name.endswith(".v1.error_reason_pb2"):
            module = importlib.import_module(module_info.name)
            found.append(module.DESCRIPTOR.enum_types_by_name["ErrorReason"])
    return found


def helpers_of(enum: EnumDescriptor) -> ModuleType:
    # tidings.chat.v1 -> tidings.api.chat.v1.errors, beside the generated protobuf modules
    return importlib.import_module(f"tidings.api.{enum.file.package.removeprefix('tidings.')}.errors")


def test_every_service_with_reasons_has_helpers() -> None:
    assert {enum.file.package for enum in reason_enums()} == {
        "tidings.account.v1",
        "tidings.admin.v1",
        "tidings.chat.v1",
        "tidings.common.v1",
    }


@pytest.mark.parametrize("enum", reason_enums(), ids=lambda enum: enum.file.package)
def test_each_reason_has_a_constructor_and_a_test_with_its_code(enum: EnumDescriptor) -> None:
    helpers = helpers_of(enum)
    values = [value for value in enum.values if value.number != 0]
    assert [reason.name for reason in helpers.REASONS] == [value.name for value in values]
    for value in values:
        code = value.GetOptions().Extensions[errors_pb2.code]
        error = getattr(helpers, value.name.lower())("what happened", key="value")
        assert isinstance(error, TidingsError)
        assert (error.code, error.reason, error.domain) == (code, value.name, enum.file.package)
        assert (error.message, error.metadata) == ("what happened", {"key": "value"})
        assert getattr(helpers, f"is_{value.name.lower()}")(error)


def test_a_test_helper_tells_reasons_apart() -> None:
    assert chat_errors.is_conversation_not_found(chat_errors.conversation_not_found("gone"))
    assert not chat_errors.is_conversation_not_found(chat_errors.message_not_found("gone"))
    assert not chat_errors.is_conversation_not_found(ValueError("CONVERSATION_NOT_FOUND"))
    assert not chat_errors.is_conversation_not_found(None)


def test_reasons_are_unique_across_services() -> None:
    names = [value.name for enum in reason_enums() for value in enum.values if value.number != 0]
    assert len(names) == len(set(names))


def test_a_bare_code_gets_the_shared_reason() -> None:
    assert errors.reason_for_code(404) is common_errors.NOT_FOUND
    assert errors.reason_for_code(413) is common_errors.INVALID_ARGUMENT
    assert errors.reason_for_code(502) is common_errors.INTERNAL
    assert errors.reason_for_code(503) is common_errors.UNAVAILABLE  # not SEARCH_UNAVAILABLE, its later namesake


def test_a_use_case_raises_for_its_bad_fields_only_when_there_are_some() -> None:
    errors.raise_for_fields({})
    with pytest.raises(TidingsError) as caught:
        errors.raise_for_fields({"username": "3-32 characters", "password": "at least 8 characters"})
    error = caught.value
    assert (error.code, error.reason, error.domain) == (400, "INVALID_ARGUMENT", "tidings.common.v1")
    assert error.metadata == {"field": "username,password"}
    assert error.message == "username: 3-32 characters; password: at least 8 characters"
    assert [violation.field for violation in error.violations] == ["username", "password"]


def test_an_error_keeps_what_it_was_raised_from() -> None:
    def lookup() -> None:
        try:
            raise KeyError("row 42")
        except KeyError as exc:
            raise account_errors.user_not_found("no such user", user_id="42") from exc

    with pytest.raises(TidingsError) as caught:
        lookup()
    assert isinstance(caught.value.cause, KeyError)
    assert str(caught.value) == "404 USER_NOT_FOUND: no such user"


def test_the_error_model_imports_no_framework() -> None:
    """``biz`` code raises these errors, and ``biz`` imports no framework, driver or generated code."""
    probe = (
        "import sys, tidings.pkg.errors; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'grpc', 'google', 'fastapi', 'starlette', 'pydantic'}))"
    )
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "[]"
