"""The push webhook app: the HTTP endpoints Graph and Google post their notifications to.

``create_push_app`` serves ``POST /hooks/graph``, ``/hooks/graph/lifecycle``
and ``/hooks/google``, refuses bodies over ``MAX_BODY`` with 413 and hands
each notification to the ``PushHub``, whose outcome becomes the response.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from sync.push.hub import PushHub

GRAPH_PATH = "/hooks/graph"
GRAPH_LIFECYCLE_PATH = "/hooks/graph/lifecycle"
GOOGLE_PATH = "/hooks/google"
MAX_BODY = 1 << 20  # Graph batches are far smaller; anything larger is refused with 413


def create_push_app(hub: PushHub) -> FastAPI:
    """The webhook app: ``POST /hooks/graph``, ``/hooks/graph/lifecycle``, ``/hooks/google``."""
    app = FastAPI(title="calref push", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.hub = hub

    async def graph(request: Request, *, lifecycle: bool) -> Response:
        body = await _body(request)
        if body is None:
            return Response("request body too large", 413, media_type="text/plain")
        outcome = hub.graph_notification(dict(request.query_params), body, lifecycle=lifecycle)
        return Response(outcome.body, outcome.status, media_type=outcome.content_type)

    @app.post(GRAPH_PATH)
    async def graph_notifications(request: Request) -> Response:
        return await graph(request, lifecycle=False)

    @app.post(GRAPH_LIFECYCLE_PATH)
    async def graph_lifecycle(request: Request) -> Response:
        return await graph(request, lifecycle=True)

    @app.post(GOOGLE_PATH)
    async def google_notifications(request: Request) -> Response:
        if await _body(request) is None:
            return Response("request body too large", 413, media_type="text/plain")
        outcome = hub.google_notification(dict(request.headers))
        return Response(b"", outcome.http_status)

    return app


async def _body(request: Request) -> bytes | None:
    """The request body, or None when it is larger than ``MAX_BODY``."""
    declared = request.headers.get("content-length", "0")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return body
