"""The switchboard simulator: ``SimulatedSwitchboard`` served over HTTP by the contract.

Serves exactly ``docs/switchboard-api.yaml`` (users, referrals, phone actions,
bearer auth, idempotency keys, JSON errors), plus test helpers: ``GET /api/log``
(every command received), ``GET /api/users/{id}/route`` (where a call would
ring now) and ``GET``/``POST /api/_faults`` (latency and error injection).
``create_app`` builds the app; ``serve`` runs it with uvicorn;
``run_in_thread`` runs it on a free loopback port for tests.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.clock import Clock
from connectors.http_server import RunningServer, serve_in_thread
from connectors.secrets import Secret
from rules.errors import CalrefError, SwitchboardError, SwitchboardUnavailable, WireError
from rules.model import PhoneAction, User

from .base import PublishedReferral
from .errors import SwitchboardRejected, UnauthorizedError
from .sim_state import SimulatedSwitchboard
from .wire import action_from_json, phone_to_json, referral_to_json, user_to_json

REPLAYED_HEADER = "Idempotent-Replayed"


class ActionBody(BaseModel):
    """A phone action: ``PhoneAction.to_json()``."""

    type: Literal["none", "follow_profile", "open", "close", "forward", "profile_switch"]
    number: str | None = None
    profile: str | None = None

    def to_action(self, where: str) -> PhoneAction:
        return action_from_json(self.model_dump(exclude_none=True), where)


class ActionRequest(BaseModel):
    action: ActionBody
    client: str = Field(default="unknown", min_length=1, max_length=100)


class ReferralRequest(BaseModel):
    reason: str = Field(min_length=1)
    message: str = ""
    start: AwareDatetime
    end: AwareDatetime
    start_action: ActionBody
    end_action: ActionBody
    client: str = Field(default="unknown", min_length=1, max_length=100)


class FaultSettings(BaseModel):
    latency: float | None = Field(default=None, ge=0, le=60)
    error_rate: float | None = Field(default=None, ge=0, le=1)
    fail_next: int | None = Field(default=None, ge=0)
    lose_next: int | None = Field(default=None, ge=0)
    status: Literal[429, 500, 502, 503, 504] | None = None
    retry_after: float | None = Field(default=None, ge=0)


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _need_key(key: str | None, call: str) -> str:
    if not key:
        raise SwitchboardRejected(
            f"{call}: the Idempotency-Key header is required", code="missing_idempotency_key"
        )
    return key


def _replay_headers(replayed: bool) -> dict[str, str]:
    return {REPLAYED_HEADER: "true"} if replayed else {}


def create_app(
    users: Iterable[User] | SimulatedSwitchboard,
    *,
    token: str | Secret | None = None,
    latency: float = 0.0,
    clock: Clock | None = None,
    error_rate: float = 0.0,
    fail_next: int = 0,
) -> FastAPI:
    """The simulator app over ``users`` (or an existing ``SimulatedSwitchboard``).

    ``clock`` is used only when the switchboard is built here; non-zero fault
    settings are applied to the switchboard's ``faults``.

    With ``token`` set, every ``/api`` call needs ``Authorization: Bearer <token>``.
    ``app.state.switchboard`` is the simulated switchboard, for tests to inspect.
    """
    if isinstance(users, SimulatedSwitchboard):
        board = users
    else:
        board = SimulatedSwitchboard(users, clock=clock)
    settings = {"latency": latency, "error_rate": error_rate, "fail_next": fail_next}
    board.faults.configure(**{name: value for name, value in settings.items() if value})
    faults = board.faults
    secret = token.reveal() if isinstance(token, Secret) else token

    def check_token(authorization: Annotated[str | None, Header()] = None) -> None:
        if secret is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), secret.encode()
        ):
            raise UnauthorizedError("missing or wrong bearer token")

    app = FastAPI(
        title="calref switchboard simulator",
        version="1.0",
        description="The switchboard gateway contract (docs/switchboard-api.yaml), simulated.",
    )
    app.state.switchboard = board
    api = APIRouter(prefix="/api", dependencies=[Depends(check_token)])

    @app.middleware("http")
    async def add_latency(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if path.startswith("/api/") and not path.startswith("/api/_faults"):
            delay = faults.snapshot()["latency"]
            if delay > 0:
                await asyncio.sleep(delay)
        return await call_next(request)

    @app.exception_handler(SwitchboardError)
    async def on_switchboard_error(request: Request, err: Exception) -> Response:
        if isinstance(err, SwitchboardUnavailable):
            status = err.status or 503
            retry = {"Retry-After": f"{err.retry_after:g}"} if err.retry_after is not None else {}
            return _error(status, err.code, str(err), retry)
        if isinstance(err, SwitchboardRejected):
            auth = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
            return _error(err.status, err.code, str(err), auth)
        return _error(500, "internal", str(err))

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(request: Request, err: Exception) -> Response:
        assert isinstance(err, RequestValidationError)
        parts = []
        for problem in err.errors():
            place = ".".join(str(p) for p in problem.get("loc", ()))
            parts.append(f"{place}: {problem.get('msg', 'invalid')}")
        return _error(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(WireError)
    async def on_wire_error(request: Request, err: Exception) -> Response:
        return _error(422, "invalid_action", str(err))

    @app.exception_handler(CalrefError)
    async def on_calref_error(request: Request, err: Exception) -> Response:
        return _error(422, "invalid_request", str(err))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return _error(err.status_code, code, f"{request.method} {request.url.path}: {err.detail}")

    @app.get("/api/health", tags=["simulator"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/users", tags=["users"])
    def list_users() -> dict[str, Any]:
        return {"users": [user_to_json(u, board.referrals(u.id)) for u in board.list_users()]}

    @api.get("/users/{user_id}", tags=["users"])
    def get_user(user_id: str) -> dict[str, Any]:
        user = board.get_user(user_id)
        return user_to_json(user, board.referrals(user_id))

    @api.put("/users/{user_id}/referrals/{referral_id:path}", tags=["referrals"])
    def put_referral(
        user_id: str, referral_id: str, body: ReferralRequest, key: IdempotencyKey = None
    ) -> Response:
        where = f"PUT referral {referral_id}"
        referral = PublishedReferral(
            id=referral_id,
            reason=body.reason,
            message=body.message,
            start=body.start,
            end=body.end,
            start_action=body.start_action.to_action(f"{where}: start_action"),
            end_action=body.end_action.to_action(f"{where}: end_action"),
        )
        outcome = board.publish(user_id, referral, _need_key(key, where), client=body.client)
        return JSONResponse(
            referral_to_json(outcome.value), headers=_replay_headers(outcome.replayed)
        )

    @api.delete(
        "/users/{user_id}/referrals/{referral_id:path}", status_code=204, tags=["referrals"]
    )
    def delete_referral(
        user_id: str, referral_id: str, key: IdempotencyKey = None, client: str = "unknown"
    ) -> Response:
        where = f"DELETE referral {referral_id}"
        outcome = board.withdraw(user_id, referral_id, _need_key(key, where), client=client)
        return Response(status_code=204, headers=_replay_headers(outcome.replayed))

    @api.post("/users/{user_id}/actions", tags=["phone"])
    def post_action(user_id: str, body: ActionRequest, key: IdempotencyKey = None) -> Response:
        where = f"POST action for {user_id}"
        action = body.action.to_action(f"{where}: action")
        outcome = board.apply(user_id, action, _need_key(key, where), client=body.client)
        return JSONResponse(phone_to_json(outcome.value), headers=_replay_headers(outcome.replayed))

    @api.get("/users/{user_id}/route", tags=["simulator"])
    def get_route(user_id: str) -> dict[str, Any]:
        return {"user": user_id, **board.route(user_id).to_json()}

    @api.get("/log", tags=["simulator"])
    def get_log(user: str | None = None) -> dict[str, Any]:
        records = [r for r in board.log() if user is None or r.user == user]
        return {"commands": [r.to_json() for r in records]}

    @api.get("/_faults", tags=["simulator"])
    def get_faults() -> dict[str, float]:
        return faults.snapshot()

    @api.post("/_faults", tags=["simulator"])
    def set_faults(body: FaultSettings) -> dict[str, float]:
        faults.configure(**body.model_dump(exclude_none=True))
        return faults.snapshot()

    app.include_router(api)
    return app


def is_loopback(host: str) -> bool:
    """Whether ``host`` is loopback (or ``localhost``): reachable from this machine only."""
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve beyond loopback


def serve(
    users: Iterable[User] | SimulatedSwitchboard,
    host: str = "127.0.0.1",
    port: int = 8700,
    **kw: Any,
) -> None:
    """Run the simulator with uvicorn until interrupted (``calref simulator``)."""
    uvicorn.run(create_app(users, **kw), host=host, port=port, log_level="warning")


@dataclass
class RunningSimulator:
    """A simulator served by uvicorn in a background thread; ``stop()`` ends it."""

    http: RunningServer
    app: FastAPI

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def switchboard(self) -> SimulatedSwitchboard:
        board: SimulatedSwitchboard = self.app.state.switchboard
        return board

    def stop(self) -> None:
        self.http.stop(timeout=10)


def run_in_thread(
    app: FastAPI, host: str = "127.0.0.1", startup_timeout: float = 10.0
) -> RunningSimulator:
    """Serve ``app`` on a free port of ``host`` (loopback) in a daemon thread; wait until up."""
    http = serve_in_thread(
        app, host, 0, name="switchboard simulator", startup_timeout=startup_timeout
    )
    return RunningSimulator(http, app)
