"""ARM's error shape: ``{"error": {"code", "message", "target"?, "details"?}}`` (``CloudError`` in common.json)."""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An error answered in ARM's shape. Raised by the state and validation layers, and by the Python API."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"({code}) {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        return {"error": error}


def resource_group_not_found(rg: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")


def resource_not_found(type_name: str, name: str, rg: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{type_name}/{name}' under resource group '{rg}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def child_not_found(resource_id: str) -> ArmError:
    """Network RP's answer for a missing child resource (rule collection group, route)."""
    return ArmError(404, "NotFound", f"Resource {resource_id} not found.")


def parent_not_found(action: str, child_type: str, parent_id: str) -> ArmError:
    return ArmError(
        404,
        "ParentResourceNotFound",
        f"Failed to perform '{action}' on resource(s) of type '{child_type}', because the parent resource "
        f"'{parent_id}' could not be found.",
    )


def bad_request(code: str, message: str, **kwargs: Any) -> ArmError:
    return ArmError(400, code, message, **kwargs)
