"""The swarm's queue (docs/swarm.md, "The queue"): producers add work items to the claim ledger
(`enqueue`: `reactor claims add`, the `swarm-enqueue` flow), drain runs of the swarm flow take,
plan, execute and complete them (`draining`). `prefect_tasks` holds the drain's @task wrappers
and undo hook. The ledger itself is `tasks.claims` (docs/ledger.md)."""
