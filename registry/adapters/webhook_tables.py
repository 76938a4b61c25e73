"""WebhookStore on Azure Table Storage (the layout: adapters/webhook_codec.py).

A subscription and its index rows live in two partitions, so they cannot change in one
transaction. They are written in the order that keeps every crash harmless: index rows a
subscription gains are written before it, rows it loses after it. A crash in between leaves at
most an index row the subscription does not want, and every delivery checks the subscription
itself before it sends anything.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableServiceClient, UpdateMode

from registry.adapters import webhook_codec as codec
from registry.adapters.errors import ignore_exists, storage_errors
from registry.domain.errors import AlreadyExists, NotFound
from registry.domain.webhooks import Delivery, Subscription

_BATCH = 100
_IF_MATCH = MatchConditions.IfNotModified


class TableWebhookStore:
    def __init__(self, service: TableServiceClient, subscriptions_table: str, deliveries_table: str) -> None:
        self._subscriptions = service.get_table_client(subscriptions_table)
        self._deliveries = service.get_table_client(deliveries_table)

    def ensure_tables(self) -> None:
        for table in (self._subscriptions, self._deliveries):
            with storage_errors():
                ignore_exists(table.create_table)

    # -- subscriptions --

    def subscription(self, owner: str, subscription_id: str) -> Subscription | None:
        try:
            with storage_errors():
                return codec.subscription(self._subscriptions.get_entity(owner, subscription_id))
        except NotFound:
            return None

    def subscriptions(self, owner: str) -> list[Subscription]:
        with storage_errors():
            entities = self._subscriptions.query_entities(
                "PartitionKey eq @owner", parameters={"owner": owner}
            )
            return [codec.subscription(e) for e in entities]

    def all_subscriptions(self) -> Iterator[Subscription]:
        with storage_errors():
            for entity in self._subscriptions.query_entities(
                "PartitionKey ne @index", parameters={"index": codec.LISTENERS}
            ):
                yield codec.subscription(entity)

    def stale_logs(self, pruned_before: datetime) -> Iterator[Subscription]:
        with storage_errors():
            for entity in self._subscriptions.query_entities(
                "PartitionKey ne @index and pruned_at lt @before",
                parameters={"index": codec.LISTENERS, "before": pruned_before},
            ):
                yield codec.subscription(entity)

    def save_subscription(self, subscription: Subscription, previous: Subscription | None) -> Subscription:
        wanted = codec.listener_rows(subscription)
        had = codec.listener_rows(previous) if previous is not None else {}
        self._index([("upsert", row) for key, row in wanted.items() if had.get(key) != row])
        entity = codec.subscription_entity(subscription)
        with storage_errors(missing_is_conflict=True):
            if previous is None:
                etag = self._subscriptions.create_entity(entity)["etag"]
            else:
                etag = self._subscriptions.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=previous.etag, match_condition=_IF_MATCH
                )["etag"]
        self._unindex([key for key in had if key not in wanted])
        subscription.etag = etag
        return subscription

    def _index(self, operations: list[tuple[str, dict[str, Any]]]) -> None:
        for start in range(0, len(operations), _BATCH):
            with storage_errors():
                self._subscriptions.submit_transaction(operations[start : start + _BATCH])  # type: ignore[arg-type]

    def _unindex(self, keys: list[str]) -> None:
        """Index rows removed one by one (a few at most): one already gone is no error."""
        for key in keys:
            with storage_errors():
                self._subscriptions.delete_entity(codec.LISTENERS, key)

    def delete_subscription(self, subscription: Subscription) -> None:
        # Its index rows first (nothing new is fanned out to it), then the record, then its log.
        self._unindex(list(codec.listener_rows(subscription)))
        try:
            with storage_errors():
                self._subscriptions.delete_entity(subscription.owner, subscription.id)
        except NotFound:
            pass
        self._delete_rows(codec.deliveries_partition(subscription.owner, subscription.id))

    def _delete_rows(self, partition: str, low: str = "") -> int:
        with storage_errors():
            keys = [
                e["RowKey"]
                for e in self._deliveries.query_entities(
                    "PartitionKey eq @pk and RowKey gt @low",
                    parameters={"pk": partition, "low": low},
                    select=["RowKey"],
                )
            ]
        for start in range(0, len(keys), _BATCH):
            batch = [
                ("delete", {"PartitionKey": partition, "RowKey": k}) for k in keys[start : start + _BATCH]
            ]
            with storage_errors():
                self._deliveries.submit_transaction(batch)  # type: ignore[arg-type]
        return len(keys)

    def listeners(self, model_name: str) -> list[tuple[str, str, tuple[str, ...]]]:
        found = []
        with storage_errors():
            for low, high in codec.listener_ranges(model_name):
                for entity in self._subscriptions.query_entities(
                    "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                    parameters={"pk": codec.LISTENERS, "low": low, "high": high},
                ):
                    listener = codec.listener(entity, model_name)
                    if listener is not None:
                        found.append(listener)
        return found

    # -- deliveries --

    def add_delivery(self, delivery: Delivery) -> bool:
        try:
            with storage_errors():
                delivery.etag = self._deliveries.create_entity(codec.delivery_entity(delivery))["etag"]
        except AlreadyExists:
            return False
        return True

    def delivery(
        self, owner: str, subscription_id: str, event_time: datetime, event_id: str
    ) -> Delivery | None:
        try:
            with storage_errors():
                entity = self._deliveries.get_entity(
                    codec.deliveries_partition(owner, subscription_id),
                    codec.delivery_row_key(event_time, event_id),
                )
        except NotFound:
            return None
        return codec.delivery(entity)

    def find_delivery(self, owner: str, subscription_id: str, event_id: str) -> Delivery | None:
        with storage_errors():
            for entity in self._deliveries.query_entities(
                "PartitionKey eq @pk and event_id eq @id",
                parameters={"pk": codec.deliveries_partition(owner, subscription_id), "id": event_id},
            ):
                return codec.delivery(entity)
        return None

    def save_delivery(self, delivery: Delivery) -> Delivery:
        with storage_errors(missing_is_conflict=True):
            delivery.etag = self._deliveries.update_entity(
                codec.delivery_entity(delivery),
                mode=UpdateMode.REPLACE,
                etag=delivery.etag,
                match_condition=_IF_MATCH,
            )["etag"]
        return delivery

    def deliveries(
        self, owner: str, subscription_id: str, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Delivery]:
        query = "PartitionKey eq @pk"
        parameters: dict[str, Any] = {"pk": codec.deliveries_partition(owner, subscription_id)}
        if after is not None:
            query += " and RowKey gt @after"
            parameters["after"] = codec.delivery_row_key(*after)
        with storage_errors():
            entities = self._deliveries.query_entities(
                query, parameters=parameters, results_per_page=min(max(limit, 1), 1000)
            )
            return [codec.delivery(e) for e in itertools.islice(entities, limit)]

    def prune_deliveries(self, owner: str, subscription_id: str, before: datetime) -> int:
        # Older events have greater keys: the keys after `before`'s ("~" follows any id) hold them.
        partition = codec.deliveries_partition(owner, subscription_id)
        return self._delete_rows(partition, codec.delivery_row_key(before, "~"))
