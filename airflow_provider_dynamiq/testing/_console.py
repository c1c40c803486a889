"""Hosted console pages of the fake: the connect page and the account-linking and consent pages.

These are what a person opens in a browser. They take no bearer credential: the
connect token, link token or OAuth2 state in the URL or form is the credential.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs

from airflow_provider_dynamiq.testing._http import Request, Response, Router
from airflow_provider_dynamiq.testing._state import FakeState

# Element ids that tell the pages apart. FakeDynamiqServer.follow_connect_link checks them.
CONNECT_PAGE_ID = "connect-page"
CONNECT_COMPLETE_ID = "connect-complete"
CONNECT_ERROR_ID = "connect-error"


def render_page(title: str, main_id: str, body: str) -> str:
    """Return a complete HTML document. ``title`` is escaped here, ``body`` must be escaped already."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n"
        f'<body><main id="{main_id}">\n{body}\n</main></body>\n</html>\n'
    )


def _invalid_link_page(kind: str) -> Response:
    body = f"<h1>This {html.escape(kind)} is invalid or has expired</h1>\n<p>Ask for a new link.</p>"
    return Response.html(401, render_page("Link invalid or expired", CONNECT_ERROR_ID, body))


class ConsoleRoutes:
    """Handlers of the hosted console pages."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def register(self, router: Router) -> None:
        """Add the console routes to ``router``."""
        router.add("GET", r"/connect", self.show_connect_page)
        router.add("POST", r"/connect", self.submit_connect_page)
        router.add("GET", r"/_pipedream/connect", self.link_account)
        router.add("GET", r"/_oauth2/consent", self.grant_consent)

    def show_connect_page(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``GET /connect?token=``: the end user's unmet requirements and one form that fulfils them."""
        token = request.query_value("token")
        claims = self.state.decode_connect_token(token) if token else None
        if token is None or claims is None:
            return _invalid_link_page("connect link")

        app = self.state.get_app(claims.app_id)
        pending = [
            requirement for requirement, done in self.state.requirement_statuses(claims.app_id, claims.user_id) if not done
        ]
        if pending:
            items = "\n".join(
                f'<li data-requirement-id="{html.escape(requirement.id)}">'
                f"<h2>{html.escape(requirement.title or requirement.name)}</h2>"
                f"<p>{html.escape(requirement.description)}</p></li>"
                for requirement in pending
            )
            intro = f"<p>{html.escape(app.name)} needs the following before it can act for you.</p>\n<ul>\n{items}\n</ul>"
        else:
            intro = "<p>Nothing left to connect.</p>"
        body = (
            "<h1>Connect your accounts</h1>\n"
            f"{intro}\n"
            '<form method="post" action="/connect">\n'
            f'<input type="hidden" name="token" value="{html.escape(token)}">\n'
            '<button type="submit">Connect</button>\n'
            "</form>"
        )
        return Response.html(200, render_page(f"Connect your accounts - {app.name}", CONNECT_PAGE_ID, body))

    def submit_connect_page(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``POST /connect`` (form field ``token``): fulfil every requirement of the App for the user."""
        form = parse_qs(request.body.decode("utf-8", errors="replace"), keep_blank_values=True)
        tokens = form.get("token", [])
        claims = self.state.decode_connect_token(tokens[0]) if tokens and tokens[0] else None
        if claims is None:
            return _invalid_link_page("connect link")

        self.state.complete_requirements(claims.app_id, claims.user_id, None)
        app = self.state.get_app(claims.app_id)
        body = f"<h1>All set</h1>\n<p>{html.escape(app.name)} can now act for you. You can close this page.</p>"
        return Response.html(200, render_page("All set", CONNECT_COMPLETE_ID, body))

    def link_account(self, request: Request, match: re.Match[str]) -> Response:
        """Serve the account-linking link that ``.../pipedream/authorize`` returns."""
        return self._complete_link(request.query_value("token"), "account link")

    def grant_consent(self, request: Request, match: re.Match[str]) -> Response:
        """Serve the OAuth2 consent link that ``.../oauth2/authorize`` returns."""
        return self._complete_link(request.query_value("state"), "consent link")

    def _complete_link(self, link_token: str | None, kind: str) -> Response:
        requirement = self.state.complete_authorization(link_token) if link_token else None
        if requirement is None:
            return _invalid_link_page(kind)
        title = requirement.title or requirement.name
        body = f"<h1>Connected</h1>\n<p>{html.escape(title)}: done. You can close this page.</p>"
        return Response.html(200, render_page("Connected", CONNECT_COMPLETE_ID, body))
