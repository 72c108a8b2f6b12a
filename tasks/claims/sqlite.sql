-- The embedded ledger's statements (tasks/claims/sqlite.py runs them by name).
-- Every statement gets :now (epoch seconds) and :stamp (ISO-8601 UTC); a list parameter
-- arrives as a JSON array (read with json_each).

-- name: lapsed_error
-- what a lapsed lease leaves as last_error, over the row's old values
replace(replace(:lapsed, '{claim}', claim_id), '{agent}', COALESCE(agent_id, '?'))

-- name: lapsed
status IN ('claimed', 'in_progress') AND lease_expires < :now

-- name: types
(:types IS NULL OR work_type IN (SELECT value FROM json_each(:types))) AND rank <= :max_rank

-- name: get
SELECT * FROM work_items WHERE work_item_id = :wid

-- name: statuses
SELECT work_item_id, status FROM work_items
WHERE work_item_id IN (SELECT value FROM json_each(:ids))

-- name: list_all
SELECT * FROM work_items ORDER BY seq LIMIT COALESCE(:limit, -1)

-- name: list_status
SELECT * FROM work_items WHERE status = :status ORDER BY seq LIMIT COALESCE(:limit, -1)

-- name: holdings
SELECT * FROM work_items
WHERE agent_id IN (SELECT value FROM json_each(:holders)) AND claim_id IS NOT NULL
ORDER BY seq

-- name: counts
SELECT status, COUNT(*) AS n FROM work_items GROUP BY status

-- name: pending_types
SELECT work_type, COUNT(*) AS n FROM work_items WHERE status = 'pending'
GROUP BY work_type ORDER BY work_type

-- name: queue_depth
SELECT COUNT(*) AS n FROM work_items WHERE status = 'pending'

-- name: oldest_pending_age
SELECT :now - MIN(created_at) AS age FROM work_items WHERE status = 'pending'

-- name: blocked
WITH RECURSIVE bad(id, root) AS (
    SELECT work_item_id, work_item_id FROM work_items WHERE status = 'failed'
    UNION SELECT d.work_item_id, bad.root FROM work_item_deps d JOIN bad ON d.depends_on = bad.id
)
SELECT w.work_item_id, bad.root FROM work_items w JOIN bad ON w.work_item_id = bad.id
WHERE w.status = 'pending' ORDER BY w.seq, bad.root

-- name: ever_claimed
SELECT * FROM work_items WHERE claims > 0 ORDER BY seq

-- name: insert_item
INSERT INTO work_items (work_item_id, work_type, priority, rank, description,
    estimated_duration, team, payload, dependencies, unmet, max_attempts, created_at)
VALUES (:wid, :work_type, :priority, :rank, :description, :estimated_duration, :team,
    :payload, :dependencies, :unmet, :max_attempts, :now)

-- name: insert_dependency
INSERT INTO work_item_deps (work_item_id, depends_on) VALUES (:wid, :depends_on)

-- name: dead_letter
-- lapsed leases at their last attempt (of the given item, type, types and ranks) fail for good
UPDATE work_items SET status = 'failed', attempts = attempts + 1,
    last_error = {{ lapsed_error }},
    result = json_object('error', {{ lapsed_error }}),
    completed_at = :stamp, lease_expires = NULL
WHERE {{ lapsed }} AND attempts + 1 >= max_attempts
    AND (:wid IS NULL OR work_item_id = :wid)
    AND (:work_type IS NULL OR work_type = :work_type)
    AND {{ types }}

-- name: expired_seqs
SELECT seq FROM work_items
WHERE {{ lapsed }} AND unmet = 0 AND (:work_type IS NULL OR work_type = :work_type)
ORDER BY lease_expires LIMIT :n

-- name: ready_seqs
SELECT seq FROM work_items
WHERE status = 'pending' AND unmet = 0 AND (:work_type IS NULL OR work_type = :work_type)
ORDER BY rank, seq LIMIT :n

-- name: claimable_named
-- the item, if this agent may claim it: pending, its lease lapsed, or held by the agent
SELECT seq FROM work_items
WHERE work_item_id = :wid AND (status = 'pending'
    OR (status IN ('claimed', 'in_progress') AND (lease_expires < :now OR agent_id = :agent)))

-- name: take_row
-- a lapsed lease taken over counts an attempt (SET reads the row's old values)
UPDATE work_items SET
    attempts = attempts + ({{ lapsed }}),
    last_error = CASE WHEN {{ lapsed }} THEN {{ lapsed_error }} ELSE last_error END,
    status = 'claimed', agent_id = :agent, claim_id = :token, claimed_at = :stamp,
    lease_expires = :now + :lease_s, last_heartbeat = :stamp, progress = 0,
    claims = claims + 1, trace_id = :trace, span_id = :span
WHERE seq = :seq
RETURNING *

-- name: take_expired
SELECT work_item_id, rank, seq, unmet FROM work_items
WHERE {{ lapsed }} AND {{ types }}
ORDER BY lease_expires

-- name: take_page
SELECT work_item_id, rank, seq, unmet FROM work_items
WHERE status = 'pending' AND (:after_rank IS NULL OR (rank, seq) > (:after_rank, :after_seq))
    AND {{ types }}
ORDER BY rank, seq LIMIT :n

-- name: take_ids
SELECT work_item_id, rank, seq, unmet FROM work_items
WHERE work_item_id IN (SELECT value FROM json_each(:ids))
    AND (status = 'pending' OR ({{ lapsed }}))
    AND {{ types }}

-- name: waiting_on
SELECT d.work_item_id, d.depends_on FROM work_item_deps d
JOIN work_items w ON w.work_item_id = d.depends_on
WHERE d.work_item_id IN (SELECT value FROM json_each(:ids)) AND w.status != 'completed'

-- name: renew
UPDATE work_items SET lease_expires = :now + :lease_s, last_heartbeat = :stamp
WHERE work_item_id = :wid AND claim_id = :token AND status IN ('claimed', 'in_progress')
RETURNING *

-- name: progress
UPDATE work_items SET status = 'in_progress', progress = :percent,
    lease_expires = COALESCE(:now + :lease_s, lease_expires), last_heartbeat = :stamp
WHERE work_item_id = :wid AND claim_id = :token AND status IN ('claimed', 'in_progress')
RETURNING *

-- name: assign
UPDATE work_items SET agent_id = :agent
WHERE work_item_id = :wid AND claim_id = :token AND status IN ('claimed', 'in_progress')
RETURNING *

-- name: fail
-- at the last attempt the item fails for good (keeping its holder), else it is pending again
UPDATE work_items SET attempts = attempts + 1, last_error = :error, lease_expires = NULL,
    status = CASE WHEN attempts + 1 >= max_attempts THEN 'failed' ELSE 'pending' END,
    agent_id = CASE WHEN attempts + 1 >= max_attempts THEN agent_id END,
    claim_id = CASE WHEN attempts + 1 >= max_attempts THEN claim_id END,
    result = CASE WHEN attempts + 1 >= max_attempts THEN :result ELSE result END,
    completed_at = CASE WHEN attempts + 1 >= max_attempts THEN :stamp END,
    progress = CASE WHEN attempts + 1 >= max_attempts THEN progress ELSE 0 END
WHERE work_item_id = :wid AND claim_id = :token AND status IN ('claimed', 'in_progress')
RETURNING *

-- name: release
UPDATE work_items SET status = 'pending', agent_id = NULL, claim_id = NULL,
    lease_expires = NULL, progress = 0
WHERE work_item_id = :wid AND claim_id = :token AND status IN ('claimed', 'in_progress')
RETURNING *

-- name: complete
UPDATE work_items SET status = 'completed', progress = 100, result = :result,
    completed_at = :stamp, lease_expires = NULL
WHERE work_item_id = :wid AND claim_id = :token AND status IN ('claimed', 'in_progress')
RETURNING *

-- name: release_dependents
UPDATE work_items SET unmet = unmet - 1
WHERE work_item_id IN (SELECT work_item_id FROM work_item_deps WHERE depends_on = :wid)

-- name: outbox_add
INSERT INTO log_outbox (entry) VALUES (:entry)

-- name: outbox
SELECT id, entry FROM log_outbox ORDER BY id

-- name: outbox_drop
DELETE FROM log_outbox WHERE id <= :last
