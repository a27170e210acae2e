-- name: CreateTask :one
INSERT INTO tasks (project_id, parent_id, path, title, body, priority, assignee_id, due_on, estimate, labels)
VALUES (@project_id, sqlc.narg(parent_id), @path, @title, sqlc.narg(body), @priority,
        sqlc.narg(assignee_id), sqlc.narg(due_on), sqlc.narg(estimate), @labels)
RETURNING *;

-- name: GetTask :one
SELECT * FROM tasks WHERE id = $1;

-- name: ListTasks :many
SELECT * FROM tasks WHERE project_id = $1 ORDER BY priority DESC, created_at, id;

-- name: ListTasksPage :many
-- Keyset pagination on (created_at, id).
SELECT id, title, state, created_at FROM tasks
WHERE project_id = @project_id AND (created_at, id) > (@after_created_at::timestamptz, @after_id::bigint)
ORDER BY created_at, id
LIMIT @page_size;

-- name: ListTasksInStates :many
SELECT id, title, state FROM tasks WHERE project_id = @project_id AND state = ANY(@states::task_state[]) ORDER BY id;

-- name: ListTasksByPriority :many
SELECT id, priority FROM tasks WHERE priority IN (sqlc.slice(priorities)) ORDER BY id;

-- name: MoveTask :one
UPDATE tasks SET state = @state, updated_at = now() WHERE id = @id RETURNING id, state, updated_at;

-- name: AssignTask :execrows
UPDATE tasks SET assignee_id = sqlc.narg(assignee_id), updated_at = now() WHERE id = @id;

-- name: TaskSubtree :many
SELECT id, path, title FROM tasks WHERE path <@ @root::ltree ORDER BY path;

-- name: TaskAncestors :many
SELECT id, path FROM tasks WHERE path @> (SELECT t.path FROM tasks t WHERE t.id = $1) ORDER BY nlevel(path);

-- name: TaskDepth :one
SELECT nlevel(path) AS depth FROM tasks WHERE id = $1;

-- name: TaskTreeRecursive :many
WITH RECURSIVE tree AS (
    SELECT t.id, t.parent_id, t.title, 1 AS depth FROM tasks t WHERE t.id = @root_id
    UNION ALL
    SELECT c.id, c.parent_id, c.title, tree.depth + 1 FROM tasks c JOIN tree ON c.parent_id = tree.id
)
SELECT id, parent_id, title, depth FROM tree ORDER BY depth, id;

-- name: TasksWithAssignees :many
SELECT t.id, t.title, u.full_name AS assignee, u.email
FROM tasks t LEFT JOIN users u ON u.id = t.assignee_id
WHERE t.project_id = $1
ORDER BY t.id;

-- name: TasksDueBetween :many
SELECT id, title, due_on FROM tasks WHERE due_on BETWEEN @from_day AND @to_day ORDER BY due_on;

-- name: TaskEstimateTotal :one
SELECT sum(estimate) AS total FROM tasks WHERE project_id = $1;

-- name: TasksPerStateAndPriority :many
SELECT state, priority, count(*) AS tasks FROM tasks WHERE project_id = $1
GROUP BY ROLLUP (state, priority) ORDER BY state, priority;

-- name: LatestTaskPerAssignee :many
SELECT DISTINCT ON (assignee_id) assignee_id, id, title, created_at
FROM tasks WHERE assignee_id IS NOT NULL
ORDER BY assignee_id, created_at DESC;

-- name: TaskRankInProject :many
SELECT id, title,
       row_number() OVER (PARTITION BY project_id ORDER BY priority DESC, id) AS position,
       lag(id) OVER (PARTITION BY project_id ORDER BY priority DESC, id) AS previous_id
FROM tasks WHERE project_id = $1;

-- name: AddTaskLabel :exec
UPDATE tasks SET labels = array_append(labels, @label::text) WHERE id = @id;

-- name: TaskLabels :many
SELECT DISTINCT unnest(labels)::text AS label FROM tasks WHERE project_id = $1 ORDER BY 1;

-- name: DeleteDoneTasks :execrows
DELETE FROM tasks WHERE project_id = $1 AND state = 'done';

-- name: TaskCountsByDay :many
SELECT d::date AS day, count(t.id) AS created
FROM generate_series(@since::date, @until::date, interval '1 day') AS d
LEFT JOIN tasks t ON t.created_at::date = d::date
GROUP BY d ORDER BY d;

-- name: BatchMoveTasks :batchexec
UPDATE tasks SET state = $2 WHERE id = $1;

-- name: BatchTaskTitles :batchmany
SELECT title FROM tasks WHERE project_id = $1 ORDER BY id;

-- name: LockTask :exec
SELECT pg_advisory_xact_lock($1);

-- name: TryLockTask :one
SELECT pg_try_advisory_xact_lock($1) AS locked;

-- name: TaskWithProject :one
SELECT sqlc.embed(tasks), sqlc.embed(projects)
FROM tasks JOIN projects ON projects.id = tasks.project_id
WHERE tasks.id = $1;

-- name: TasksOfLateralComments :many
SELECT t.id, t.title, c.body AS last_comment
FROM tasks t
LEFT JOIN LATERAL (
    SELECT cm.body FROM comments cm WHERE cm.task_id = t.id ORDER BY cm.created_at DESC LIMIT 1
) c ON true
WHERE t.project_id = $1
ORDER BY t.id;
