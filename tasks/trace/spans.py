"""The span layout of a trace run, and the attribute keys the analysis reads back.

All spans of a run share the workflow's trace id:

    trace <workflow_id>      INTERNAL root: child of Prefect's flow-run span when there is one
      system <name>          INTERNAL, one per system step
        GET <name> health    CLIENT
        POST <name>          CLIENT, one per attempt: a new parent-id for every call
          standin <...>      SERVER, when a stand-in (or any instrumented system) continued it
"""

from __future__ import annotations

KIND_ATTR = "reactor.trace.kind"  # root | system | health | attempt | server
SYSTEM_ATTR = "reactor.trace.system"
STATUS_ATTR = "reactor.trace.status"  # on a system span: ok | simulated
ATTEMPT_ATTR = "reactor.trace.attempt"
