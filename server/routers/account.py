"""``/api/me``: who the server thinks the caller is (tenant, user, roles), and the admin gate for support views."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel

from server.identity import CurrentPrincipal, Principal

router = APIRouter(tags=["account"])


class Me(BaseModel):
    user: str
    tenant: str
    roles: list[str]
    is_admin: bool
    from_host: bool


@router.get("/api/me", response_model=Me)
def me(principal: CurrentPrincipal) -> Me:
    return Me(
        user=principal.user,
        tenant=principal.tenant,
        roles=sorted(principal.roles),
        is_admin=principal.is_admin,
        from_host=principal.from_host,
    )


def require_admin(principal: CurrentPrincipal) -> Principal:
    """Support views: only a host-identified user with ``JWT_ADMIN_ROLE`` (an anonymous user never is one)."""
    if not (principal.from_host and principal.is_admin):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs the support role")
    return principal


AdminPrincipal = Annotated[Principal, Depends(require_admin)]
