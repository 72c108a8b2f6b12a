"""A small HTTP client with retries, used by the ingestion workers.

Requests that fail with a connection error, a timeout, or HTTP 429/502/503/504 are retried with
exponential backoff: 0.5 s, 1 s, 2 s and 4 s, each with up to 25% random jitter. A 429 response
with a Retry-After header waits for the time the server asked for instead.
"""

import random
import time

import httpx

RETRY_STATUS = {429, 502, 503, 504}


class RetryingClient:
    def __init__(self, base_url: str, tries: int = 5, timeout_s: float = 10.0):
        self.client = httpx.Client(base_url=base_url, timeout=timeout_s)
        self.tries = tries

    def get_json(self, path: str) -> dict:
        """GET `path` and return the decoded JSON body, retrying transient failures."""
        for attempt in range(self.tries):
            try:
                response = self.client.get(path)
            except (httpx.ConnectError, httpx.TimeoutException):
                if attempt == self.tries - 1:
                    raise
                self._sleep(attempt, None)
                continue
            if response.status_code in RETRY_STATUS and attempt < self.tries - 1:
                self._sleep(attempt, response.headers.get("retry-after"))
                continue
            response.raise_for_status()
            return response.json()
        raise RuntimeError("unreachable")

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        if retry_after is not None and retry_after.isdigit():
            time.sleep(int(retry_after))
            return
        delay = 0.5 * 2**attempt
        time.sleep(delay * (1 + random.uniform(-0.25, 0.25)))
