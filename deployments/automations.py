"""The alerts: Prefect automations kept in `deployments/automations.yaml`, applied to a server.

    PREFECT_API_URL=… [REACTOR_ALERT_WEBHOOK_URL=https://hooks.slack.com/…] \
        python -m deployments.automations

(`make deploy` runs this after registering the deployments.) Applying is idempotent: an
automation that exists by name is updated in place (extra copies are removed), a missing one is
created. With `REACTOR_ALERT_WEBHOOK_URL` set, the URL is stored in the Prefect `Webhook` block
`reactor-alerts` (as a secret) and every automation POSTs its notification through it; without
it, the automations exist with no action and their description says where to configure one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from pydantic import BaseModel

from tasks.settings import Settings, get_settings

AUTOMATIONS_FILE = Path(__file__).resolve().parent / "automations.yaml"
WEBHOOK_BLOCK = "reactor-alerts"
UNCONFIGURED = (
    " No notification is sent: set REACTOR_ALERT_WEBHOOK_URL to a webhook URL (Slack, Teams, "
    "PagerDuty Events, any HTTP endpoint) and run `make deploy` again."
)
# The JSON body of every notification; `text` is what Slack-style incoming webhooks display.
PAYLOAD = (
    "{% set text %}TEXT{% endset %}"
    '{"text": {{ text | trim | tojson }}, '
    '"automation": {{ automation.name | tojson }}, '
    '"event": {{ event.event | tojson }}, '
    '"resource": {{ event.resource.id | tojson }}, '
    '"resource_name": {{ event.resource.name | tojson }}, '
    '"occurred": {{ event.occurred | string | tojson }}, '
    '"event_id": {{ event.id | string | tojson }}}'
)


class AppliedAutomation(BaseModel):
    name: str
    id: UUID
    action: str  # call-webhook | do-nothing
    created: bool


def load_specs(path: Path = AUTOMATIONS_FILE) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text())["automations"]


def automation_of(spec: dict[str, Any], webhook_block_id: UUID | None):
    """The Prefect automation for one entry of automations.yaml."""
    from prefect.events.schemas.automations import AutomationCore

    body = {k: v for k, v in spec.items() if k != "notify"}
    if webhook_block_id is None:
        body["description"] = spec.get("description", "") + UNCONFIGURED
        body["actions"] = [{"type": "do-nothing"}]
    else:
        payload = PAYLOAD.replace("TEXT", spec["notify"]["text"])
        body["actions"] = [
            {"type": "call-webhook", "block_document_id": webhook_block_id, "payload": payload}
        ]
    return AutomationCore.model_validate(body)


async def _webhook_block(client, url: str | None) -> UUID | None:
    """Save (or update) the webhook block from `url`; remove it when no URL is configured."""
    from prefect.blocks.webhook import Webhook
    from prefect.exceptions import ObjectNotFound

    if not url:
        try:
            document = await client.read_block_document_by_name(WEBHOOK_BLOCK, "webhook")
        except ObjectNotFound:
            return None
        await client.delete_block_document(document.id)
        return None
    block = Webhook(url=url, headers={"Content-Type": "application/json"})
    return await block.asave(WEBHOOK_BLOCK, overwrite=True, client=client)


async def apply_automations(
    settings: Settings | None = None, path: Path = AUTOMATIONS_FILE
) -> list[AppliedAutomation]:
    """Create or update every automation of `path` on the server in PREFECT_API_URL."""
    from prefect.client.orchestration import get_client

    settings = settings or get_settings()
    url = settings.alert_webhook_url.get_secret_value() if settings.alert_webhook_url else None
    applied = []
    async with get_client() as client:
        block_id = await _webhook_block(client, url)
        for spec in load_specs(path):
            automation = automation_of(spec, block_id)
            existing = await client.read_automations_by_name(automation.name)
            if existing:
                automation_id = existing[0].id
                await client.update_automation(automation_id, automation)
                for extra in existing[1:]:
                    await client.delete_automation(extra.id)
            else:
                automation_id = await client.create_automation(automation)
            applied.append(
                AppliedAutomation(
                    name=automation.name,
                    id=automation_id,
                    action=automation.actions[0].type,
                    created=not existing,
                )
            )
    return applied


def main() -> int:
    for a in asyncio.run(apply_automations()):
        verb = "created" if a.created else "updated"
        print(f"automation {a.name!r} {verb} ({a.action})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
