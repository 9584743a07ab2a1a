"""The client package's public surface is exactly what is listed here.

Adding or removing a public name is an API change: update this list on purpose.
"""

from __future__ import annotations

import switchyard_client

EXPECTED = {
    "AsyncChatStream",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "ChatChunk",
    "ChatResult",
    "ChatStream",
    "Client",
    "DeadlineExceededError",
    "EmbedResult",
    "InternalError",
    "ModelInfo",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "Route",
    "SwitchyardError",
    "ToolCall",
    "ToolCallDelta",
    "UnavailableError",
    "Usage",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(switchyard_client.__all__) == EXPECTED
    assert len(switchyard_client.__all__) == len(EXPECTED), "duplicate entries in __all__"


def test_every_exported_name_exists_and_claims_the_package() -> None:
    for name in switchyard_client.__all__:
        member = getattr(switchyard_client, name)
        # Public classes live in private modules; none may leak a non-private module path.
        assert member.__module__.startswith("switchyard_client._"), name


def test_no_public_module_besides_the_package() -> None:
    public = {
        name
        for name, value in vars(switchyard_client).items()
        if not name.startswith("_") and type(value).__name__ == "module"
    }
    assert public == set()


def test_exceptions_share_one_base() -> None:
    errors = [
        getattr(switchyard_client, name)
        for name in switchyard_client.__all__
        if name.endswith("Error") and name != "SwitchyardError"
    ]
    assert errors
    for cls in errors:
        assert issubclass(cls, switchyard_client.SwitchyardError), cls
