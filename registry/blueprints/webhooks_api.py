"""HTTP functions: the caller's webhook subscriptions and their delivery logs."""

from __future__ import annotations

import azure.functions as func

from registry.blueprints import views
from registry.blueprints.api_models import (
    DeliveriesQuery,
    DeliveryPageResponse,
    MessageResponse,
    WebhookCreated,
    WebhookList,
    WebhookResponse,
    WebhookSecret,
)
from registry.blueprints.http import (
    Answer,
    Api,
    Endpoint,
    Reply,
    absolute_url,
    json_body,
    next_link,
    query,
    route_values,
)
from registry.identity import Principal
from registry.services import webhooks as service
from registry.services.dependencies import Dependencies
from registry.validation import WebhookRequest

api = Api()
bp = api.blueprint


def webhook_path(webhook_id: str) -> str:
    return f"/api/v1.0/webhooks/{webhook_id}"


@api.route(
    "PUT",
    "v1.0/webhooks/{id}",
    Endpoint(
        summary="Create or replace one of the caller's webhook subscriptions",
        answers={
            201: Answer(
                "Created: the signing secret is in this answer only", WebhookCreated, headers=("Location",)
            ),
            200: Answer(
                "Replaced (the secret is kept; a disabled webhook is enabled again)", WebhookResponse
            ),
        },
        errors=(400, 409, 413, 415, 503),
        body=WebhookRequest,
    ),
)
def put_webhook(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    (webhook_id,) = route_values(req, "id")
    saved = service.save(deps, caller, webhook_id, json_body(req, deps.settings.max_body_bytes))
    if saved.created and saved.secret is not None:
        headers = {"Location": absolute_url(req, webhook_path(webhook_id)), "Cache-Control": "no-store"}
        return Reply(201, views.webhook_created(saved.webhook, saved.secret), headers)
    return Reply(200, views.webhook(saved.webhook))


@api.route(
    "GET",
    "v1.0/webhooks",
    Endpoint(
        summary="The caller's webhook subscriptions",
        answers={200: Answer("Every webhook of the caller", WebhookList)},
        errors=(503,),
    ),
)
def list_webhooks(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    return Reply(200, WebhookList(webhooks=[views.webhook(w) for w in service.list_own(deps, caller)]))


@api.route(
    "GET",
    "v1.0/webhooks/{id}",
    Endpoint(
        summary="One of the caller's webhook subscriptions (never its secret)",
        answers={200: Answer("The webhook", WebhookResponse)},
        errors=(400, 404, 503),
    ),
)
def get_webhook(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    (webhook_id,) = route_values(req, "id")
    return Reply(200, views.webhook(service.get(deps, caller, webhook_id)))


@api.route(
    "DELETE",
    "v1.0/webhooks/{id}",
    Endpoint(
        summary="Delete one of the caller's webhook subscriptions and its delivery log",
        answers={200: Answer("Deleted", MessageResponse)},
        errors=(400, 404, 503),
    ),
)
def delete_webhook(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    (webhook_id,) = route_values(req, "id")
    service.delete(deps, caller, webhook_id)
    return Reply(200, MessageResponse(message=f"Deleted webhook {webhook_id}"))


@api.route(
    "POST",
    "v1.0/webhooks/{id}/rotate-secret",
    Endpoint(
        summary="A new signing secret; the previous one also signs for 24 hours",
        answers={200: Answer("The new secret: in this answer only", WebhookSecret)},
        errors=(400, 404, 409, 503),
    ),
)
def rotate_webhook_secret(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    (webhook_id,) = route_values(req, "id")
    found, secret = service.rotate_secret(deps, caller, webhook_id)
    return Reply(200, views.webhook_secret(found, secret), {"Cache-Control": "no-store"})


@api.route(
    "GET",
    "v1.0/webhooks/{id}/deliveries",
    Endpoint(
        summary="The webhook's delivery log: status, attempts, response status, timing (30 days)",
        answers={200: Answer("One page, newest event first", DeliveryPageResponse, headers=("Link",))},
        errors=(400, 404, 503),
        query=DeliveriesQuery,
    ),
)
def list_webhook_deliveries(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    params: DeliveriesQuery = query(req, DeliveriesQuery)
    (webhook_id,) = route_values(req, "id")
    page = service.deliveries(
        deps, caller, webhook_id, params.limit or service.DEFAULT_PAGE, params.continuation
    )
    headers = next_link(req, f"{webhook_path(webhook_id)}/deliveries", page.continuation)
    body = DeliveryPageResponse(
        deliveries=[views.delivery(d) for d in page.deliveries], continuation=page.continuation
    )
    return Reply(200, body, headers)


@api.route(
    "POST",
    "v1.0/webhooks/{id}/deliveries/{event_id}/redeliver",
    Endpoint(
        summary="Send an event to the webhook again, now",
        answers={202: Answer("The attempt is queued; the delivery log shows its outcome", MessageResponse)},
        errors=(400, 404, 409, 503),
    ),
)
def redeliver_webhook_event(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    webhook_id, event_id = route_values(req, "id", "event_id")
    service.redeliver(deps, caller, webhook_id, event_id)
    return Reply(
        202, MessageResponse(message=f"Event {event_id} is being sent to webhook {webhook_id} again")
    )
