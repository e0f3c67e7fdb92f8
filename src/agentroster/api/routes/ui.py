"""The live dashboard at `/ui/`: one page and its assets, built from `ui/` (TypeScript, Vite).

The built files are committed in `api/ui_static/`, so a `pip install` serves the page without
Node. Every answer under `/ui/` carries a strict Content-Security-Policy: only this origin's
script, style, images and connections, no inline code, no framing. The page reads the same
API any client does (list + watch); where discovery needs a key, it asks the reader for one
and sends it as a header. `/` and `/ui` lead to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

#: Where the committed build lives (`ui/vite.config.ts` writes it there).
UI_DIRECTORY = Path(__file__).resolve().parent.parent / "ui_static"
#: The page's path.
UI_PATH = "/ui/"
#: Nothing but this origin's files; the page's data is read with fetch from this origin.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
#: What every answer under /ui/ carries besides its content.
UI_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # fixed file names (no content hash): revalidate, so an upgrade is seen at once
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class _Template:
    """What the API's metrics read from `scope["route"]`: the route template."""

    path: str


#: The template every file under /ui/ is counted under (a mount sets no route of its own).
UI_ROUTE = _Template(f"{UI_PATH}{{path}}")


class UiFiles(StaticFiles):
    """The dashboard's files, each answer with the page's security headers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a file, counted in the metrics under one template, not its raw path."""
        scope["route"] = UI_ROUTE
        await super().__call__(scope, receive, send)

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file at `path` (or the 404), with `UI_HEADERS`."""
        response = await super().get_response(path, scope)
        response.headers.update(UI_HEADERS)
        return response


def ui_files() -> UiFiles:
    """The files to mount at /ui (`index.html` for the folder itself)."""
    return UiFiles(directory=UI_DIRECTORY, html=True)


@router.get("/")
@router.get("/ui")
async def to_dashboard() -> RedirectResponse:
    """The dashboard lives at /ui/ (its assets are addressed relative to it)."""
    return RedirectResponse(UI_PATH, status_code=307)
