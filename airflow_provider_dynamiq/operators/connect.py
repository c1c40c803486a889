"""Operators that hand an end user the hosted connect link.

The link embeds a connect token and is a credential for 24 hours, so these operators log only
its host and expiry, never the link itself.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Sequence
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

import httpx
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from airflow.providers.smtp.hooks.smtp import SmtpHook
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.log import mask_secret

from airflow_provider_dynamiq._tokens import is_expired
from airflow_provider_dynamiq._validation import require_id
from airflow_provider_dynamiq.exceptions import DynamiqConfigError, DynamiqError
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_dynamiq.models import ConnectToken

DEFAULT_SUBJECT = "Action needed: connect your accounts"
#: Task state store key recording that this task emailed its user in this DAG run.
EMAIL_STATE_KEY = "dynamiq_connect_email"
# Stands in for the link when templates are rendered before a token is created.
PLACEHOLDER_URL = "https://connect.invalid/connect?token=placeholder"
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")

DEFAULT_HTML_CONTENT = """\
<p>Hello,</p>
<p>To finish setting up, please connect the following {{ "account" if requirements|length == 1 else "accounts" }}:</p>
<ul>
{% for requirement in requirements %}  <li><strong>{{ requirement.title or requirement.name }}</strong>\
{% if requirement.description %}: {{ requirement.description }}{% endif %}</li>
{% endfor %}</ul>
<p><a href="{{ connect_url }}">Connect your accounts</a></p>
<p>This link is personal and expires on {{ expires_at.strftime("%Y-%m-%d %H:%M UTC") }}. Please do not forward it.</p>
"""


class DynamiqCreateConnectTokenOperator(BaseOperator):
    """Create a hosted connect link for an end user and return it for a downstream task to deliver.

    Returns ``{"user_id", "url", "expires_at"}``. The ``url`` is a credential for 24 hours:
    returning it to XCom is this operator's purpose (for a Slack, CRM or in-app delivery task),
    so restrict who can read this task's XCom. The task log shows only the link's host and
    expiry. To email the link without it ever reaching XCom, use
    :class:`DynamiqSendConnectLinkOperator`.

    :param user_id: the end user's id (templated).
    :param dynamiq_conn_id: Dynamiq connection id (templated), ``dynamiq_default`` by default.

    .. seealso:: The "DynamiqCreateConnectTokenOperator" section of the README.
    """

    template_fields: Sequence[str] = ("user_id", "dynamiq_conn_id")
    ui_color = "#fff4e0"

    def __init__(self, *, user_id: str, dynamiq_conn_id: str = DynamiqHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user_id = user_id
        self.dynamiq_conn_id = dynamiq_conn_id

    @cached_property
    def hook(self) -> DynamiqHook:
        """The hook this task talks to Dynamiq through."""
        return DynamiqHook(dynamiq_conn_id=self.dynamiq_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        user_id = require_id(self.user_id, "user_id")
        with self.hook:
            token = self.hook.create_connect_token(user_id)
        url = _unwrap_and_mask(token)
        self.log.info(
            "Created a connect link for user %s on %s, valid until %s.",
            user_id,
            link_host(url),
            token.expires_at.isoformat(),
        )
        return {"user_id": user_id, "url": url, "expires_at": token.expires_at.isoformat()}


class DynamiqSendConnectLinkOperator(BaseOperator):
    """Email an end user the hosted connect link when they still have unmet requirements.

    The operator checks the user's requirement status first. When the user is ready it sends
    nothing. Otherwise it creates a connect token and sends one email through the SMTP
    connection, listing each unmet requirement's title and description and when the link
    expires. At most one email is sent per user and DAG run. The SMTP send is never repeated
    within a try. A retry of the task (or of one mapped index) finds the earlier try's record in
    Airflow's task state store and sends nothing. A send that certainly failed (no connection,
    rejected address) does not count, so a retry sends it.

    Returns ``{"user_id", "sent", "expires_at", "unsatisfied"}``, with requirement names only.
    The link never reaches XCom, the task log or the rendered template fields.

    ``subject`` and ``html_content`` are Jinja templates rendered when the email is built, not
    when the task starts, because the link does not exist before then. They receive the task
    context (``ds``, ``params``, ...) plus ``user_id``, ``connect_url``, ``expires_at`` (an aware
    UTC datetime) and ``requirements`` (a list of ``{"id", "name", "type", "title",
    "description"}``). ``html_content`` is HTML-escaped automatically.

    :param user_id: the end user's id (templated).
    :param to: recipient address, or a list of addresses (templated).
    :param subject: Jinja template of the subject; a generic default when ``None``.
    :param html_content: Jinja template of the HTML body; a default that lists the requirements
        and links the connect page when ``None``.
    :param smtp_conn_id: Airflow SMTP connection id (templated), ``smtp_default`` by default.
    :param from_email: sender address (templated); defaults to the SMTP connection's
        ``from_email`` extra.
    :param cc: carbon-copy recipients (templated).
    :param bcc: blind carbon-copy recipients (templated).
    :param dynamiq_conn_id: Dynamiq connection id (templated), ``dynamiq_default`` by default.

    .. seealso:: The "DynamiqSendConnectLinkOperator" section of the README.
    """

    # subject and html_content are deliberately not template fields; see the class docstring.
    template_fields: Sequence[str] = ("user_id", "to", "cc", "bcc", "from_email", "smtp_conn_id", "dynamiq_conn_id")
    ui_color = "#fff4e0"

    def __init__(
        self,
        *,
        user_id: str,
        to: str | list[str],
        subject: str | None = None,
        html_content: str | None = None,
        smtp_conn_id: str = "smtp_default",
        from_email: str | None = None,
        cc: str | list[str] | None = None,
        bcc: str | list[str] | None = None,
        dynamiq_conn_id: str = DynamiqHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.user_id = user_id
        self.to = to
        self.subject = subject
        self.html_content = html_content
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email
        self.cc = cc
        self.bcc = bcc
        self.dynamiq_conn_id = dynamiq_conn_id
        self._email_attempted = False
        # Compile once here so that a template syntax error fails when the DAG is parsed.
        _template(subject or DEFAULT_SUBJECT, "subject", autoescape=False)
        _template(html_content or DEFAULT_HTML_CONTENT, "html_content", autoescape=True)

    @cached_property
    def hook(self) -> DynamiqHook:
        """The hook this task talks to Dynamiq through."""
        return DynamiqHook(dynamiq_conn_id=self.dynamiq_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        user_id = require_id(self.user_id, "user_id")
        recipients = _recipients(self.to, "to", required=True)
        _recipients(self.cc, "cc", required=False)
        _recipients(self.bcc, "bcc", required=False)

        store = context.get("task_state_store") if hasattr(context, "get") else None
        earlier = store.get(EMAIL_STATE_KEY) if store is not None else None
        if isinstance(earlier, dict):
            # At most one email per user and DAG run: a retry never sends again, even when the
            # earlier try failed after (or while) sending.
            self.log.info("An earlier try of this task already emailed user %s; not sending again.", user_id)
            return {"user_id": user_id, "sent": True, "expires_at": earlier.get("expires_at"), "unsatisfied": earlier.get("unsatisfied", [])}

        with self.hook:
            status = self.hook.get_requirements_status(user_id)
            if status.is_complete:
                self.log.info("User %s has met every requirement; no email sent.", user_id)
                return {"user_id": user_id, "sent": False, "expires_at": None, "unsatisfied": []}
            requirements = [requirement.summary() for requirement in status.unsatisfied]
            # A rehearsal with a placeholder link makes a template error fail before a token exists.
            self._render_email(context, user_id, PLACEHOLDER_URL, datetime.now(timezone.utc), requirements)
            token = self.hook.create_connect_token(user_id)

        if is_expired(token.expires_at):
            raise DynamiqError(
                f"The connect token for user {user_id} already expired at {token.expires_at.isoformat()}; "
                "no email was sent. Check this machine's clock."
            )
        url = _unwrap_and_mask(token)
        subject, body = self._render_email(
            context, user_id, url, token.expires_at, requirements, secrets=(url, token.token.get_secret_value())
        )

        sent_record = {"expires_at": token.expires_at.isoformat(), "unsatisfied": status.unsatisfied_names()}
        if store is not None:
            store.set(EMAIL_STATE_KEY, sent_record)  # before sending: if the send dies midway, no retry resends
        try:
            self._send_once(recipients, subject, body)
        except _NotSent:
            if store is not None:
                store.delete(EMAIL_STATE_KEY)  # certainly not sent, so a retry may send it
            raise
        self.log.info(
            "Emailed a connect link on %s to %s for user %s (%d unmet requirement(s)); it expires at %s.",
            link_host(url),
            ", ".join(recipients),
            user_id,
            len(requirements),
            token.expires_at.isoformat(),
        )
        return {
            "user_id": user_id,
            "sent": True,
            "expires_at": token.expires_at.isoformat(),
            "unsatisfied": status.unsatisfied_names(),
        }

    def _render_email(
        self,
        context: Context,
        user_id: str,
        url: str,
        expires_at: datetime,
        requirements: list[dict[str, str]],
        *,
        secrets: tuple[str, ...] = (),
    ) -> tuple[str, str]:
        """Return the rendered subject and HTML body; errors never quote ``secrets``."""
        variables = {
            **context,
            "user_id": user_id,
            "connect_url": url,
            "expires_at": expires_at,
            "requirements": requirements,
        }
        rendered = []
        for name, source, autoescape in (
            ("subject", self.subject or DEFAULT_SUBJECT, False),
            ("html_content", self.html_content or DEFAULT_HTML_CONTENT, True),
        ):
            try:
                rendered.append(_template(source, name, autoescape=autoescape).render(variables))
            except TemplateError as error:
                message = str(error.message or error)
                for secret in secrets:
                    message = message.replace(secret, "<hidden>")
                raise DynamiqConfigError(f"Could not render {name} for user {user_id}: {message}") from None
        subject, body = rendered
        # Folding white space keeps a template's line breaks out of the Subject header.
        return " ".join(subject.split()), body

    def _send_once(self, recipients: list[str], subject: str, body: str) -> None:
        if self._email_attempted:
            raise DynamiqError("An email was already attempted in this task try; not sending another.")
        self._email_attempted = True
        where = f"the connect link for user {self.user_id} through SMTP connection {self.smtp_conn_id!r}"
        smtp = _SingleAttemptSmtpHook(smtp_conn_id=self.smtp_conn_id)
        try:
            smtp.get_conn()
        except (smtplib.SMTPException, OSError, AirflowException) as error:
            raise _NotSent(
                f"Failed to email {where}: could not connect or log in ({type(error).__name__}: {error}). "
                "The email was not sent."
            ) from None
        with smtp:
            try:
                smtp.send_email_smtp(
                    to=recipients,
                    subject=subject,
                    html_content=body,
                    from_email=self.from_email,
                    cc=self.cc,
                    bcc=self.bcc,
                )
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
                raise _NotSent(
                    f"Failed to email {where}: the server rejected it ({type(error).__name__}: {error}). "
                    "The email was not sent; check the addresses."
                ) from None
            except (smtplib.SMTPException, OSError, AirflowException) as error:
                raise DynamiqError(
                    f"Failed to email {where}: {type(error).__name__}: {error}. The email may or may not have "
                    "been delivered, so it is not resent in this task try."
                ) from None


class _NotSent(DynamiqError):
    """The email was certainly not sent (no connection, or the server rejected it)."""


class _SingleAttemptSmtpHook(SmtpHook):
    """SMTP hook whose send is never repeated.

    ``SmtpHook.send_email_smtp`` retries ``sendmail`` after any error, including a timeout
    while reading the server's final reply, when the message may already be queued. Setting
    its retry limit to zero makes one email per call a guarantee.
    """

    @property
    def smtp_retry_limit(self) -> int:
        return 0


def link_host(url: str) -> str:
    """Return the host of a link, which is safe to log, unlike the link."""
    try:
        return httpx.URL(url).host or "an unknown host"
    except httpx.InvalidURL:
        return "an unknown host"


def _unwrap_and_mask(token: ConnectToken) -> str:
    # Masking is the safety net for other code in this task that might print the values; this
    # provider never logs them. Two calls per task keep the masker's cost negligible.
    url = token.url.get_secret_value()
    mask_secret(url)
    mask_secret(token.token.get_secret_value())
    return url


_TEMPLATE_ENVIRONMENTS = {
    autoescape: SandboxedEnvironment(autoescape=autoescape, undefined=StrictUndefined)
    for autoescape in (False, True)
}


def _template(source: str, name: str, *, autoescape: bool) -> Any:
    if not isinstance(source, str):
        raise DynamiqConfigError(f"{name} must be a string template, got {type(source).__name__}.")
    try:
        return _TEMPLATE_ENVIRONMENTS[autoescape].from_string(source)
    except TemplateError as error:
        raise DynamiqConfigError(f"{name} is not a valid Jinja template: {error}") from None


def _recipients(value: Any, name: str, *, required: bool) -> list[str]:
    if value is None or value == "" or value == []:
        if required:
            raise DynamiqConfigError(f"{name} is missing. Pass an email address or a list of addresses.")
        return []
    addresses = [part.strip() for part in value.replace(";", ",").split(",")] if isinstance(value, str) else value
    if not isinstance(addresses, (list, tuple)) or not all(isinstance(address, str) for address in addresses):
        raise DynamiqConfigError(f"{name} must be an email address or a list of them, got {value!r}.")
    invalid = [address for address in addresses if not _ADDRESS.match(address)]
    if invalid or not addresses:
        raise DynamiqConfigError(
            f"{name} contains invalid email address(es): {invalid or value!r}. Use addresses like user@example.com."
        )
    return list(addresses)

