"""A small HTTP POST on the standard library, run in a thread (no extra dependency)."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from dataclasses import dataclass

from kopilka.notify.channels import Reject, Retry


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


def _post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Answer:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # the URL is configured
            return Answer(resp.status, resp.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read())
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise Retry(f"{url}: {getattr(exc, 'reason', exc)}") from None


async def post(
    url: str, body: bytes, headers: dict[str, str], *, timeout_s: float = 10.0
) -> Answer:
    """POST and return the answer; a network failure raises ``Retry``."""
    if not url.startswith(("http://", "https://")):
        raise Reject(f"not an http(s) URL: {url!r}")
    return await asyncio.to_thread(_post, url, body, headers, timeout_s)


def check_status(answer: Answer, what: str) -> None:
    """2xx passes; 408, 425, 429 and 5xx are worth a retry; any other status is final."""
    if 200 <= answer.status < 300:
        return
    text = answer.body[:300].decode("utf-8", "replace")
    if answer.status in (408, 425, 429) or answer.status >= 500:
        raise Retry(f"{what}: HTTP {answer.status} {text}")
    raise Reject(f"{what}: HTTP {answer.status} {text}")
