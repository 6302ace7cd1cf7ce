"""Settings of the notify service (``MOTCUA_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from motcua.settings import PlatformSettings, _split_csv

# A retry schedule for days (as GOV.UK Notify and Standard Webhooks keep trying): seconds.
DAYS_OF_RETRIES = [30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 86400, 86400]


class NotifySettings(PlatformSettings):
    service: ClassVar[str] = "notify"

    notify_channels: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["email", "sms"], description="Channels notify delivers on (email, sms), "
        "each used for an applicant who gave its address; the policy file may narrow them per procedure.")
    notify_policy_file: Path | None = Field(
        None, description="YAML naming the events that notify the applicant and the channels, by default and per "
        "procedure code (`events: [...]`, `channels: [...]`, `procedures: {1.004616: {events: [...]}}`); "
        "empty: every notifiable event on every channel.")
    notify_smtp_host: str = Field("127.0.0.1", description="SMTP server (submission relay) of the e-mail channel.")
    notify_smtp_port: int = Field(8025, description="Its port (587 for STARTTLS, 465 for implicit TLS; the "
                                  "development server of `make run` listens on 8025).")
    notify_smtp_security: str = Field("none", description="none | starttls | tls (implicit TLS).")
    notify_smtp_username: str = Field("", description="SMTP AUTH user; empty: no AUTH.")
    notify_smtp_password: str = Field("", description="SMTP AUTH password.")
    notify_smtp_sender: str = Field("Một cửa điện tử <motcua@example.vn>", description="The e-mails' From.")
    notify_smtp_ca_file: str = Field("", description="PEM CA to trust for the SMTP server's certificate "
                                     "(empty: the system's).")
    notify_smtp_timeout_s: float = Field(30.0, description="Timeout of one SMTP conversation step.")
    notify_sms_url: str = Field("http://127.0.0.1:8026/sms", description="The SMS gateway's JSON-over-HTTP(S) "
                                "endpoint (the stand-in of `make run` listens on 8026).")
    notify_sms_username: str = Field("", description="HTTP basic auth user of the SMS gateway (empty: none).")
    notify_sms_password: str = Field("", description="HTTP basic auth password of the SMS gateway.")
    notify_sms_token: str = Field("", description="Bearer token of the SMS gateway (empty: none).")
    notify_sms_sender: str = Field("MOTCUA", description="The registered brand name SMS are sent from.")
    notify_sms_unaccented: bool = Field(True, description="Send SMS without Vietnamese diacritics (GSM-7).")
    notify_sms_timeout_s: float = Field(15.0, description="Timeout of one request to the SMS gateway.")
    notify_email_retry_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(DAYS_OF_RETRIES), description="Seconds before each retry of an e-mail "
        "the server did not accept (jittered); after the last, notification.failed.")
    notify_sms_retry_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(DAYS_OF_RETRIES), description="Seconds before each retry of an SMS.")
    notify_retry_jitter: float = Field(0.2, description="Each retry delay varies by ± this fraction.")
    notify_sending_lease_s: float = Field(
        60.0, description="A notification left `sending` this long (its worker died while sending) is tried "
        "again, with the same Message-ID / request id.")
    notify_due_interval_s: float = Field(1.0, description="How often the worker looks for notifications whose "
                                         "next attempt is due.")
    notify_concurrency: int = Field(8, description="Notifications the timer delivers at once.")
    notify_tracking_url: str = Field("https://dichvucong.example.vn/tra-cuu?ma={code}", description="The "
                                     "tracking link in every message; {code} is the dossier code.")

    notify_webhook_retry_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000, 36000], description="Seconds before each "
        "retry of a webhook delivery (jittered; Standard Webhooks' schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, "
        "10 h); after the last, the delivery failed (RedeliverSince sends it again).")
    notify_webhook_disable_after_s: float = Field(
        5 * 86400.0, description="A subscription whose deliveries fail this long without a success in between is "
        "disabled (webhook.endpoint_disabled, a note in the subscription).")
    notify_webhook_timeout_s: float = Field(10.0, description="Timeout of one webhook POST.")
    notify_webhook_lanes: int = Field(16, description="Subscriptions delivered to at once (one lane each).")
    notify_webhook_allow_http: bool = Field(False, description="Accept http:// subscription URLs (development "
                                            "only; production takes https:// only).")
    notify_webhook_allow_private: bool = Field(
        False, description="Accept subscription URLs whose host resolves to a loopback, private or link-local "
        "address (development and tests only).")

    _split_notify = field_validator("notify_channels", "notify_email_retry_s", "notify_sms_retry_s",
                                    "notify_webhook_retry_s", mode="before")(_split_csv)
