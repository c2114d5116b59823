"""Talking to the Redis broker directly: reachability, queue lengths, which tasks it holds.

Kombu's Redis transport keeps each queue as a list (`gpu`, `cpu`, plus priority lists) and
messages delivered but not yet acknowledged in the `unacked` hash; the reconciler reads both
to tell a lost message from one that is waiting.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable

import redis

from diffusion.settings import redact
from worker.app import QUEUES

PRIORITY_SEP = "\x06\x16"
UNACKED = "unacked"


class BrokerUnavailable(ConnectionError):
    """The broker could not be reached; `url` is the URL tried."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"cannot reach the broker at {redact(url)}: {detail}")
        self.url = url


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)


@functools.lru_cache(maxsize=16)
def shared_client(url: str) -> redis.Redis:
    """One client per URL for this process, its connections pooled (redis-py's pool is
    thread-safe and starts afresh in a forked child), for the checks made on every submit."""
    return client(url)


def check(url: str) -> None:
    """Raise BrokerUnavailable (one line, URL named) unless Redis answers at `url`."""
    try:
        shared_client(url).ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise BrokerUnavailable(
            url, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        ) from exc


def _queue_keys(queues: Iterable[str]) -> list[str]:
    keys = []
    for q in queues:
        keys.append(q)
        keys.extend(f"{q}{PRIORITY_SEP}{p}" for p in (1, 2, 3, 4, 5, 6, 7, 8, 9))
    return keys


def queue_lengths(url: str, queues: Iterable[str] = QUEUES) -> dict[str, int]:
    """Messages waiting per queue (not counting those a worker holds)."""
    try:
        with client(url) as r:
            return {q: sum(int(r.llen(k)) for k in _queue_keys([q])) for q in queues}
    except (redis.RedisError, OSError) as exc:
        raise BrokerUnavailable(url, str(exc)) from exc


def _task_id(message: object) -> str | None:
    if isinstance(message, list) and message:  # unacked entries: [message, exchange, key]
        message = message[0]
    if isinstance(message, dict):
        headers = message.get("headers") or {}
        props = message.get("properties") or {}
        return headers.get("id") or props.get("correlation_id")
    return None


def held_task_ids(url: str, queues: Iterable[str] = QUEUES) -> set[str]:
    """Ids of the tasks the broker holds: waiting in a queue, or delivered and unacked."""
    ids: set[str] = set()
    try:
        with client(url) as r:
            for key in _queue_keys(queues):
                for raw in r.lrange(key, 0, -1):
                    ids.add(_task_id(_loads(raw)) or "")
            for raw in r.hvals(UNACKED):
                ids.add(_task_id(_loads(raw)) or "")
    except (redis.RedisError, OSError) as exc:
        raise BrokerUnavailable(url, str(exc)) from exc
    ids.discard("")
    return ids


def _loads(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
