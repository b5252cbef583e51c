from __future__ import annotations

import grpc
import pytest

from sandbox_svc.sandboxd import errors
from sandbox_svc.sandboxd.servicer import STATUS_CODES
from sandgate.service.boundary import status_for


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.PathOutsideWorkspaceError("../x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.EditTextMismatchError(0, 2), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.WorkspaceRootError("remove"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.PathNotFoundError("/workspace/x"), grpc.StatusCode.NOT_FOUND),
        (errors.PathAlreadyExistsError("/workspace/x"), grpc.StatusCode.ALREADY_EXISTS),
        (errors.PathIsDirectoryError("/workspace"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.DirectoryNotEmptyError("/workspace/d"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.PathAccessDeniedError("/workspace/x"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.FileTooLargeError("/workspace/x", 10), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.TooManyCommandsError(64), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.ProcessLimitError(), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.KernelUnavailableError("down"), grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_each_domain_error_maps_to_the_status_its_rpc_documents(
    error: errors.SandboxdError, code: grpc.StatusCode
) -> None:
    assert status_for(STATUS_CODES, error) == code


def test_an_unclassified_error_is_not_a_domain_status_so_it_answers_internal() -> None:
    # The boundary answers an unmapped error INTERNAL with a request id, hiding its message.
    assert status_for(STATUS_CODES, errors.SandboxdError("unclassified")) is None


def test_limit_messages_name_the_limit() -> None:
    assert "65536" in str(errors.FileTooLargeError("/workspace/big", 65536))
    assert "found 3 times" in str(errors.EditTextMismatchError(0, 3))
