-- The shared ledger's statements (tasks/claims/postgres.py runs them by name). Leases are
-- judged by the database's clock (now()), so hosts with skewed clocks agree. Statements that
-- wait for row locks take them in seq order (no deadlocks); claiming ones never wait (SKIP
-- LOCKED).

-- name: claim_columns
-- what a `Claim` is built from, in this order (the single-item path returns only these)
w.work_item_id, w.agent_id, w.claim_id, w.claimed_at, w.estimated_duration, w.work_type,
w.priority, w.description, w.status, w.team, w.trace_id, w.span_id, w.lease_expires,
w.last_heartbeat, w.progress, w.claims, w.attempts, w.max_attempts, w.last_error,
w.dependencies, w.created_at, w.completed_at, w.result, w.payload

-- name: lapsed_error
-- what a lapsed lease leaves as last_error, over the row's old values
replace(replace(%(lapsed)s::text, '{claim}', w.claim_id), '{agent}', COALESCE(w.agent_id, '?'))

-- name: lapsed
w.status IN ('claimed', 'in_progress') AND w.lease_expires < now()

-- name: only
-- the rows a claiming call looks at (every filter NULL or the lowest rank: all of them)
(%(wid)s::text IS NULL OR work_item_id = %(wid)s::text)
    AND (%(work_type)s::text IS NULL OR work_type = %(work_type)s::text)
    AND (%(types)s::text[] IS NULL OR work_type = ANY(%(types)s::text[]))
    AND rank <= %(max_rank)s

-- name: dead_letter_cte
-- lapsed leases at their last attempt fail for good: a holder that keeps dying on an item
-- (OOM, segfault) must not get it back for ever
dead AS (
    UPDATE reactor_work_items w SET status = 'failed', attempts = w.attempts + 1,
        last_error = {{ lapsed_error }},
        result = jsonb_build_object('error', {{ lapsed_error }}),
        completed_at = now(), lease_expires = NULL
    WHERE w.seq IN (
        SELECT seq FROM reactor_work_items w
        WHERE {{ lapsed }} AND attempts + 1 >= max_attempts AND {{ only }}
        ORDER BY seq FOR UPDATE SKIP LOCKED)
    RETURNING w.seq)

-- name: take_set
-- a lapsed lease taken over counts an attempt (SET reads the row's old values)
SET attempts = w.attempts + CASE WHEN {{ lapsed }} THEN 1 ELSE 0 END,
    last_error = CASE WHEN {{ lapsed }} THEN {{ lapsed_error }} ELSE w.last_error END,
    status = 'claimed', agent_id = %(agent)s, claim_id = (%(tokens)s::text[])[pick.i],
    claimed_at = now(), lease_expires = now() + %(lease_s)s * interval '1 second',
    last_heartbeat = now(), progress = 0, claims = w.claims + 1,
    trace_id = %(trace)s, span_id = %(span)s

-- name: reclaimable
-- a lapsed lease another holder may take over (not at its last attempt: that one is dead)
reactor_work_items w
WHERE {{ lapsed }} AND attempts + 1 < max_attempts AND unmet = 0 AND {{ only }}
ORDER BY lease_expires

-- name: ready
reactor_work_items
WHERE status = 'pending' AND unmet = 0 AND {{ only }}
ORDER BY rank, seq

-- name: claim_next
-- one statement: the first lapsed lease, else the first ready item; both partial-index lookups
WITH {{ dead_letter_cte }}
UPDATE reactor_work_items w {{ take_set }}
FROM (SELECT COALESCE(
    (SELECT seq FROM {{ reclaimable }} LIMIT 1 FOR UPDATE SKIP LOCKED),
    (SELECT seq FROM {{ ready }} LIMIT 1 FOR UPDATE SKIP LOCKED)) AS seq, 1 AS i) pick
WHERE w.seq = pick.seq
RETURNING {{ claim_columns }}

-- name: claim_one
-- the common case of `claim_next`, in a cheaper statement: the first ready item while no lease
-- has lapsed (it returns nothing otherwise, and `claim_next` runs: it reclaims or dead-letters)
UPDATE reactor_work_items w SET status = 'claimed', agent_id = %(agent)s, claim_id = %(token)s,
    claimed_at = now(), lease_expires = now() + %(lease_s)s * interval '1 second',
    last_heartbeat = now(), progress = 0, claims = w.claims + 1,
    trace_id = %(trace)s, span_id = %(span)s
FROM (SELECT seq FROM {{ ready }} LIMIT 1 FOR UPDATE SKIP LOCKED) pick
WHERE w.seq = pick.seq
    AND NOT EXISTS (SELECT FROM reactor_work_items w WHERE {{ lapsed }} AND {{ only }})
RETURNING {{ claim_columns }}

-- name: claim_many
WITH {{ dead_letter_cte }},
expired AS (SELECT seq, lease_expires FROM {{ reclaimable }} LIMIT %(n)s FOR UPDATE SKIP LOCKED),
ready AS (SELECT seq, rank FROM {{ ready }}
    LIMIT %(n)s - (SELECT count(*) FROM expired) FOR UPDATE SKIP LOCKED),
pick AS (
    SELECT seq, row_number() OVER (ORDER BY grp, lease_expires, rank, seq) AS i
    FROM (SELECT seq, 0 AS grp, lease_expires, 0 AS rank FROM expired
          UNION ALL SELECT seq, 1, NULL, rank FROM ready) p)
UPDATE reactor_work_items w {{ take_set }}
FROM pick WHERE w.seq = pick.seq
RETURNING w.*, pick.i AS pick

-- name: claim_named
-- pending, a lapsed lease, or held by this agent; a dead letter is not taken
WITH {{ dead_letter_cte }}
UPDATE reactor_work_items w {{ take_set }}
FROM (SELECT 1 AS i) pick
WHERE w.work_item_id = %(wid)s AND (w.status = 'pending'
    OR (w.status IN ('claimed', 'in_progress')
        AND (w.lease_expires < now() OR w.agent_id = %(agent)s)))
    AND NOT ({{ lapsed }} AND w.attempts + 1 >= w.max_attempts)
RETURNING w.*

-- name: dead_letter
WITH {{ dead_letter_cte }} SELECT count(*) FROM dead

-- name: take_expired
SELECT work_item_id, rank, seq, unmet FROM reactor_work_items w
WHERE {{ lapsed }} AND attempts + 1 < max_attempts AND {{ only }}
ORDER BY lease_expires FOR UPDATE SKIP LOCKED

-- name: take_page
SELECT work_item_id, rank, seq, unmet FROM reactor_work_items
WHERE status = 'pending' AND {{ only }}
    AND (%(after_rank)s::int IS NULL OR (rank, seq) > (%(after_rank)s::int, %(after_seq)s::bigint))
ORDER BY rank, seq LIMIT %(n)s FOR UPDATE SKIP LOCKED

-- name: take_ids
SELECT work_item_id, rank, seq, unmet FROM reactor_work_items w
WHERE work_item_id = ANY(%(ids)s::text[]) AND {{ only }}
    AND (status = 'pending' OR ({{ lapsed }} AND attempts + 1 < max_attempts))
FOR UPDATE SKIP LOCKED

-- name: waiting_on
SELECT d.work_item_id, d.depends_on FROM reactor_work_item_deps d
JOIN reactor_work_items w ON w.work_item_id = d.depends_on
WHERE d.work_item_id = ANY(%(ids)s::text[]) AND w.status <> 'completed'

-- name: take_seqs
WITH pick AS (SELECT seq, ord AS i FROM unnest(%(seqs)s::bigint[]) WITH ORDINALITY AS u(seq, ord))
UPDATE reactor_work_items w {{ take_set }}
FROM pick WHERE w.seq = pick.seq
RETURNING w.*, pick.i AS pick

-- name: referenced
-- the referenced items already in the ledger, locked until the add commits, each counting its
-- new dependents: a completion that waited for that lock rereads the row and sees them
WITH c AS (SELECT id, count(*) AS n FROM unnest(%(deps)s::text[]) AS id GROUP BY id),
locked AS (SELECT w.seq, COALESCE(c.n, 0) AS n FROM reactor_work_items w
    LEFT JOIN c ON c.id = w.work_item_id
    WHERE w.work_item_id = ANY(%(ids)s::text[]) ORDER BY w.seq FOR UPDATE OF w)
UPDATE reactor_work_items w SET dependents = w.dependents + locked.n FROM locked
WHERE w.seq = locked.seq
RETURNING w.work_item_id, w.status

-- name: copy_items
COPY reactor_work_items (work_item_id, work_type, priority, rank, description,
    estimated_duration, team, payload, dependencies, unmet, max_attempts, dependents) FROM STDIN

-- name: copy_dependencies
COPY reactor_work_item_deps (work_item_id, depends_on) FROM STDIN

-- name: complete_leaf
-- one item nothing depends on: one statement, a transaction of its own (`dependents` is
-- rechecked on the row's latest version, so an add that raced this completion is seen)
UPDATE reactor_work_items w SET status = 'completed', progress = 100,
    result = %(result)s::jsonb, completed_at = now(), lease_expires = NULL
WHERE work_item_id = %(wid)s AND claim_id = %(token)s AND status IN ('claimed', 'in_progress')
    AND dependents = 0
RETURNING {{ claim_columns }}

-- name: complete
-- all or none: the rows are updated only when every token is the item's current claim
WITH v AS (SELECT * FROM unnest(%(ids)s::text[], %(tokens)s::text[], %(results)s::jsonb[])
        AS v(wid, token, result)),
locked AS (SELECT w.seq, v.result FROM reactor_work_items w
    JOIN v ON w.work_item_id = v.wid AND w.claim_id = v.token
    WHERE w.status IN ('claimed', 'in_progress') ORDER BY w.seq FOR UPDATE OF w)
UPDATE reactor_work_items w SET status = 'completed', progress = 100, result = locked.result,
    completed_at = now(), lease_expires = NULL
FROM locked
WHERE w.seq = locked.seq AND (SELECT count(*) FROM locked) = cardinality(%(ids)s::text[])
RETURNING w.*

-- name: release_dependents
-- a second statement, so a fresh snapshot: it sees every dependent added while the completion
-- waited for its rows' locks
WITH d AS (SELECT work_item_id, count(*) AS n FROM reactor_work_item_deps
        WHERE depends_on = ANY(%(ids)s::text[]) GROUP BY work_item_id),
locked AS (SELECT w.seq, d.n FROM reactor_work_items w JOIN d USING (work_item_id)
    ORDER BY w.seq FOR UPDATE OF w)
UPDATE reactor_work_items w SET unmet = w.unmet - locked.n FROM locked WHERE w.seq = locked.seq

-- name: fenced
-- (holder statements change the row only while it is held under its token)
WHERE work_item_id = %(wid)s AND claim_id = %(token)s AND status IN ('claimed', 'in_progress')
RETURNING *

-- name: renew
UPDATE reactor_work_items SET lease_expires = now() + %(lease_s)s * interval '1 second',
    last_heartbeat = now()
{{ fenced }}

-- name: progress
UPDATE reactor_work_items SET status = 'in_progress', progress = %(percent)s,
    last_heartbeat = now(),
    lease_expires = COALESCE(now() + %(lease_s)s::float8 * interval '1 second', lease_expires)
{{ fenced }}

-- name: assign
UPDATE reactor_work_items SET agent_id = %(agent)s
{{ fenced }}

-- name: fail
-- at the last attempt the item fails for good (keeping its holder), else it is pending again
UPDATE reactor_work_items SET attempts = attempts + 1, last_error = %(error)s,
    lease_expires = NULL,
    status = CASE WHEN attempts + 1 >= max_attempts THEN 'failed' ELSE 'pending' END,
    agent_id = CASE WHEN attempts + 1 >= max_attempts THEN agent_id END,
    claim_id = CASE WHEN attempts + 1 >= max_attempts THEN claim_id END,
    result = CASE WHEN attempts + 1 >= max_attempts THEN %(result)s::jsonb ELSE result END,
    completed_at = CASE WHEN attempts + 1 >= max_attempts THEN now() END,
    progress = CASE WHEN attempts + 1 >= max_attempts THEN progress ELSE 0 END
{{ fenced }}

-- name: release
UPDATE reactor_work_items SET status = 'pending', agent_id = NULL, claim_id = NULL,
    lease_expires = NULL, progress = 0
{{ fenced }}

-- name: get
SELECT * FROM reactor_work_items WHERE work_item_id = %(wid)s

-- name: statuses
SELECT work_item_id, status FROM reactor_work_items WHERE work_item_id = ANY(%(ids)s::text[])

-- name: list_all
SELECT * FROM reactor_work_items ORDER BY seq LIMIT %(limit)s

-- name: list_status
SELECT * FROM reactor_work_items WHERE status = %(status)s ORDER BY seq LIMIT %(limit)s

-- name: holdings
SELECT * FROM reactor_work_items
WHERE agent_id = ANY(%(holders)s::text[]) AND claim_id IS NOT NULL ORDER BY seq

-- name: counts
SELECT status, count(*) AS n FROM reactor_work_items GROUP BY status

-- name: pending_types
SELECT work_type, count(*) AS n FROM reactor_work_items WHERE status = 'pending'
GROUP BY work_type ORDER BY work_type

-- name: queue_depth
SELECT count(*) AS n FROM reactor_work_items WHERE status = 'pending'

-- name: oldest_pending_age
SELECT extract(epoch FROM now() - min(created_at))::float8 AS age
FROM reactor_work_items WHERE status = 'pending'

-- name: blocked
WITH RECURSIVE bad(id, root) AS (
    SELECT work_item_id, work_item_id FROM reactor_work_items WHERE status = 'failed'
    UNION SELECT d.work_item_id, bad.root FROM reactor_work_item_deps d
    JOIN bad ON d.depends_on = bad.id
)
SELECT w.work_item_id, bad.root FROM reactor_work_items w JOIN bad ON w.work_item_id = bad.id
WHERE w.status = 'pending' ORDER BY w.seq, bad.root

-- name: ever_claimed
SELECT * FROM reactor_work_items WHERE claims > 0 ORDER BY seq
