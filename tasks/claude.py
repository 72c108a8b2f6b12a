"""The one Claude client: structured (tool-use) output validated by a pydantic model.

Uses the `anthropic` SDK (2.x, built on `httpx2`, pydantic's successor to httpx: tests pass
`httpx2.Client(transport=httpx2.MockTransport(handler))`), whose own retries honour `retry-after`
on 429/529. Every failure —
no key, rate limit, overload, timeout, connection error, malformed or invalid output — becomes
`LLMUnavailable(reason)`, so callers fall back and label the result with that reason.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ValidationError

from tasks.errors import LLMUnavailable
from tasks.settings import Settings, get_settings

if TYPE_CHECKING:
    import httpx2

M = TypeVar("M", bound=BaseModel)


class Claude:
    def __init__(self, settings: Settings | None = None, http_client: httpx2.Client | None = None):
        self.settings = settings or get_settings()
        if not self.settings.claude_configured:
            raise LLMUnavailable("no Anthropic API key configured (REACTOR_ANTHROPIC_API_KEY)")
        assert self.settings.anthropic_api_key is not None
        # imported here: ~2 s of CPU in every flow-run process that only falls back without a key
        import anthropic

        self.client = anthropic.Anthropic(
            api_key=self.settings.anthropic_api_key.get_secret_value(),
            timeout=self.settings.llm_timeout_s,
            max_retries=self.settings.llm_max_retries,
            http_client=http_client,
        )

    def structured(
        self, prompt: str, output: type[M], *, system: str, tool: str, max_tokens: int = 4096
    ) -> M:
        """Ask Claude to answer by calling tool `tool` whose input schema is `output`'s."""
        import anthropic  # loaded by __init__ already

        try:
            message = self.client.messages.create(
                model=self.settings.anthropic_model,
                max_tokens=max_tokens,
                system=system,
                messages=[{"role": "user", "content": prompt}],
                tools=[
                    {
                        "name": tool,
                        "description": output.__doc__ or tool,
                        "input_schema": output.model_json_schema(),
                    }
                ],
                tool_choice={"type": "tool", "name": tool},
            )
        except anthropic.APITimeoutError as exc:
            raise LLMUnavailable(f"timed out after {self.settings.llm_timeout_s:g} s") from exc
        except anthropic.APIStatusError as exc:
            raise LLMUnavailable(
                f"HTTP {exc.status_code} after {self.settings.llm_max_retries} retries: "
                f"{_short(exc.message)}"
            ) from exc
        except anthropic.APIConnectionError as exc:
            raise LLMUnavailable(f"connection error: {_short(str(exc))}") from exc
        except (anthropic.APIResponseValidationError, json.JSONDecodeError) as exc:
            # the SDK lets a 200 whose body is not JSON escape as a bare JSONDecodeError
            raise LLMUnavailable(f"malformed response: {_short(str(exc))}") from exc
        block = next((b for b in message.content if b.type == "tool_use"), None)
        if block is None:
            raise LLMUnavailable(f"no {tool!r} tool call in the response")
        data = block.input
        if isinstance(data, str):  # some proxies hand tool input back as text
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise LLMUnavailable(f"tool input is not JSON: {exc}") from exc
        try:
            return output.model_validate(data)
        except ValidationError as exc:
            raise LLMUnavailable(
                f"output failed validation ({exc.error_count()} errors): "
                f"{_short(str(exc.errors()[0]))}"
            ) from exc


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
