"""Delivery notifications: CloudTrail's SNS message, to an SNS-compatible endpoint or a webhook."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any, Mapping


class NotificationError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def delivery_message(bucket: str, keys: list[str]) -> str:
    """The SNS Message CloudTrail publishes after a delivery."""
    return json.dumps({"s3Bucket": bucket, "s3ObjectKey": keys})


class Notifier:
    """Publishes to the webhook configured for a topic name, else to SNS at ``sns_endpoint_url``.

    Thread-safe: the delivery worker publishes from several threads at once."""

    def __init__(self, *, sns_endpoint_url: str | None, webhooks: Mapping[str, str],
                 timeout: float = 5.0) -> None:
        self._sns_endpoint_url = sns_endpoint_url
        self._webhooks = dict(webhooks)
        self._timeout = timeout
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()  # one SNS client per Region, however many threads

    def publish(self, topic_arn: str, message: str) -> None:
        topic_name = topic_arn.rsplit(":", 1)[-1]
        webhook = self._webhooks.get(topic_name)
        if webhook:
            self._post(webhook, topic_arn, message)
        else:
            self._sns(topic_arn, message)

    def _post(self, url: str, topic_arn: str, message: str) -> None:
        body = json.dumps({"Type": "Notification", "TopicArn": topic_arn,
                           "Subject": "CloudTrail log file delivery", "Message": message}).encode()
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                if response.status >= 300:
                    raise NotificationError(f"HTTP{response.status}", "webhook refused")
        except urllib.error.HTTPError as exc:
            raise NotificationError(f"HTTP{exc.code}", str(exc.reason)) from exc
        except OSError as exc:
            raise NotificationError("ServiceUnavailable", str(exc)) from exc

    def _sns(self, topic_arn: str, message: str) -> None:
        import botocore.exceptions

        region = topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else "us-east-1"
        client = self._sns_client(region)
        try:
            client.publish(TopicArn=topic_arn, Message=message)
        except botocore.exceptions.ClientError as exc:
            raise NotificationError(exc.response["Error"]["Code"],
                                    exc.response["Error"].get("Message", "")) from exc
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            raise NotificationError("ServiceUnavailable", str(exc)) from exc

    def _sns_client(self, region: str) -> Any:
        with self._clients_lock:
            client = self._clients.get(region)
            if client is None:
                import boto3
                from botocore.config import Config

                client = self._clients[region] = boto3.session.Session().client(
                    "sns", region_name=region, endpoint_url=self._sns_endpoint_url,
                    config=Config(connect_timeout=self._timeout, read_timeout=self._timeout,
                                  retries={"max_attempts": 2, "mode": "standard"}))
            return client
