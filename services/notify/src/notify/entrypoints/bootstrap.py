"""Builds notify's adapters from the settings and wires them into the use cases (no eventlet
here: the worker imports this after monkey-patching; tests and the benchmark import it as it is)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import yaml

from motcua import metrics
from motcua.messagebus import MessageBus
from motcua.messaging.consuming import NOTHING_TO_REMEMBER
from motcua.objects import ObjectRef, ObjectStore
from motcua.unit_of_work import UnitsOfWork
from notify.adapters.directory import CatalogDirectory
from notify.adapters.email import SmtpChannel, SmtpConfig
from notify.adapters.records import (
    NotificationRecord,
    RecipientRecord,
    SubscriptionRecord,
    WaitingNoticeRecord,
    WebhookDeliveryRecord,
)
from notify.adapters.sms import HttpSmsChannel, SmsGatewayConfig
from notify.adapters.templates import JinjaRenderer
from notify.adapters.webhooks import StandardWebhookSender, StreamHistory, UrlPolicy, cloudevent_json
from notify.application.notifying import (
    DeliverNotification,
    DeliverySettings,
    Notifier,
    NotifyApplicant,
    RememberApplicant,
)
from notify.application.ports import Channel, Schemas
from notify.application.webhooks import PublicEventArrived, Webhooks, WebhookSchemas, WebhookSettings
from notify.config import NotifySettings
from notify.domain.notifications import EMAIL, SMS, NotifyPolicy, RetrySchedule

SCHEMAS = Schemas(recipients=RecipientRecord, notifications=NotificationRecord, waiting=WaitingNoticeRecord)
WEBHOOK_SCHEMAS = WebhookSchemas(subscriptions=SubscriptionRecord, deliveries=WebhookDeliveryRecord)
OUTBOX_SCHEMAS = [NotificationRecord, SubscriptionRecord]  # the aggregates whose outbox the relay sweeps


def channels(settings: NotifySettings) -> dict[str, Channel]:
    built: dict[str, Channel] = {}
    if EMAIL in settings.notify_channels:
        built[EMAIL] = SmtpChannel(SmtpConfig(
            host=settings.notify_smtp_host, port=settings.notify_smtp_port, security=settings.notify_smtp_security,
            username=settings.notify_smtp_username, password=settings.notify_smtp_password,
            sender=settings.notify_smtp_sender, timeout_s=settings.notify_smtp_timeout_s,
            ca_file=settings.notify_smtp_ca_file))
    if SMS in settings.notify_channels:
        built[SMS] = HttpSmsChannel(SmsGatewayConfig(
            url=settings.notify_sms_url, username=settings.notify_sms_username,
            password=settings.notify_sms_password, token=settings.notify_sms_token,
            sender=settings.notify_sms_sender, unaccented=settings.notify_sms_unaccented,
            timeout_s=settings.notify_sms_timeout_s))
    return built


def delivery_settings(settings: NotifySettings) -> DeliverySettings:
    jitter = settings.notify_retry_jitter
    return DeliverySettings(
        schedules={EMAIL: RetrySchedule(tuple(settings.notify_email_retry_s), jitter),
                   SMS: RetrySchedule(tuple(settings.notify_sms_retry_s), jitter)},
        sending_lease=timedelta(seconds=settings.notify_sending_lease_s),
        tracking_url=settings.notify_tracking_url,
        concurrency=settings.notify_concurrency)


def policy(settings: NotifySettings) -> NotifyPolicy:
    if settings.notify_policy_file is None:
        return NotifyPolicy()
    return NotifyPolicy.from_mapping(yaml.safe_load(settings.notify_policy_file.read_text(encoding="utf-8")))


def notifier(settings: NotifySettings, uows: UnitsOfWork, channel_ports: dict[str, Channel] | None = None,
             objects: ObjectStore | None = None) -> Notifier:
    """``objects``: the platform's documents, from which e-mails attach the forms events refer to."""
    def document(ref: Mapping[str, Any]) -> bytes:
        if objects is None:
            raise LookupError("no object storage given to notify")
        return objects.get(ObjectRef.from_dict(dict(ref)))

    return Notifier(uows, SCHEMAS, channels(settings) if channel_ports is None else channel_ports, JinjaRenderer(),
                    CatalogDirectory(settings.catalog_file), delivery_settings(settings), policy(settings),
                    clock=settings.clock(), documents=document, observe=metrics.delivery_attempted)


def webhooks(settings: NotifySettings, uows: UnitsOfWork, with_history: bool = False) -> Webhooks:
    urls = UrlPolicy(allow_http=settings.notify_webhook_allow_http,
                     allow_private=settings.notify_webhook_allow_private)
    return Webhooks(uows, WEBHOOK_SCHEMAS, StandardWebhookSender(settings.notify_webhook_timeout_s, urls), urls,
                    cloudevent_json, WebhookSettings(
                        schedule=RetrySchedule(tuple(settings.notify_webhook_retry_s), settings.notify_retry_jitter),
                        disable_after=timedelta(seconds=settings.notify_webhook_disable_after_s),
                        sending_lease=timedelta(seconds=settings.notify_sending_lease_s),
                        lanes=settings.notify_webhook_lanes),
                    history=StreamHistory(settings.amqp_uri) if with_history else None, clock=settings.clock(),
                    observe=metrics.delivery_attempted)


def bus(notify: Notifier, hooks: Webhooks | None) -> MessageBus:
    """The worker's handlers: a public event goes to the webhooks' fan-out, then (if it is the
    applicant's business) to the notifier; notify.deliver to the notifier."""
    def on_public_event(message: PublicEventArrived) -> object:
        queued = hooks.fan_out(message.event) if hooks is not None else 0
        if isinstance(message.applicant, RememberApplicant):
            notify.remember(message.applicant)
        elif isinstance(message.applicant, NotifyApplicant):
            notify.notify(message.applicant)
        elif not queued:
            # Most events (assigned, signed, archived…): no subscriber wants them and they are not
            # the applicant's business. Nothing was written, so a redelivery is decided afresh (and
            # a subscription created meanwhile gets it, as it would any event): no processed record.
            return NOTHING_TO_REMEMBER
        return None

    return MessageBus({PublicEventArrived: on_public_event, DeliverNotification: notify.deliver})
