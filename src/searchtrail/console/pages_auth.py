"""Sign-in and sign-out pages: the sign-in form's CSRF token is a double-submit cookie, since
there is no session yet; the session cookie is HttpOnly and SameSite=Strict (Secure on TLS)."""

from __future__ import annotations

import hmac
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from searchtrail.console.signin import SignInService
from searchtrail.console.ui import (
    CSRF_FIELD,
    PREFIX,
    SESSION_COOKIE,
    Ui,
    Viewer,
    is_secure,
    safe_next,
)

SIGN_IN_COOKIE = "searchtrail-signin"  # the sign-in form's CSRF token (double submit)
MAX_PASSWORD = 512


class AuthPages:
    def __init__(self, ui: Ui, signin: SignInService) -> None:
        self._ui = ui
        self._signin = signin

    def routes(self) -> list[Route]:
        return [
            Route("/signin", self.form, methods=["GET"]),
            Route("/signin", self.sign_in, methods=["POST"]),
            Route("/signout", self._ui.action(self.sign_out), methods=["POST"]),
        ]

    async def form(self, request: Request) -> Response:
        if await self._ui.viewer(request) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return self._form(request, {"kind": "root", "account": "", "user": ""})

    def _form(self, request: Request, values: dict[str, str], *, error: str = "",
              status: int = 200) -> Response:
        token = secrets.token_urlsafe(32)
        response = self._ui.render(request, "signin.html", {
            "title": "Sign in", "values": values, "error": error, "signin_token": token,
            "next": safe_next(request.query_params.get("next") or values.get("next")),
        }, status=status)
        response.set_cookie(SIGN_IN_COOKIE, token, httponly=True, samesite="strict",
                            secure=is_secure(request), path=PREFIX + "/signin")
        return response

    async def sign_in(self, request: Request) -> Response:
        form = await request.form()
        expected = request.cookies.get(SIGN_IN_COOKIE, "")
        sent = str(form.get(CSRF_FIELD) or "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            return self._ui.refused(request, "The sign-in form was missing its security token, "
                                    "or it was out of date. Reload the page and try again.")
        values = self._values(form)
        password = str(form.get("password") or "")[:MAX_PASSWORD]
        if values["kind"] == "iam" and not values["user"]:
            return self._form(request, values, error="Enter your IAM user name.", status=400)
        if not password:
            return self._form(request, values, error="Enter your password.", status=400)
        target = safe_next(values["next"])
        result = await self._signin.attempt(
            account_id=values["account"], user_name=values["user"] if values["kind"] == "iam"
            else None, password=password, scope=request.scope,
            user_agent=request.headers.get("user-agent", ""),
            login_to=f"{request.url.scheme}://{request.url.netloc}{target}")
        if result.token is None:
            return self._form(request, values, error=result.message, status=result.status)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, result.token, httponly=True, samesite="strict",
                            secure=is_secure(request), path=PREFIX)
        response.delete_cookie(SIGN_IN_COOKIE, path=PREFIX + "/signin")
        return response

    @staticmethod
    def _values(form: FormData) -> dict[str, str]:
        kind = "iam" if form.get("kind") == "iam" else "root"
        return {"kind": kind, "account": str(form.get("account") or "").strip()[:12],
                "user": str(form.get("user") or "").strip()[:64],
                "next": str(form.get("next") or "")}

    async def sign_out(self, request: Request, viewer: Viewer, form: FormData) -> Response:
        await self._signin.sign_out(viewer.session)
        response = RedirectResponse(PREFIX + "/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response
