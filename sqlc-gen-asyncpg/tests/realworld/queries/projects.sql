-- name: CreateProject :one
INSERT INTO projects (org_id, name, description, budget)
VALUES (@org_id, @name, sqlc.narg(description), sqlc.narg(budget))
RETURNING *;

-- name: GetProject :one
SELECT * FROM projects WHERE id = $1 AND archived_at IS NULL;

-- name: ListProjects :many
SELECT * FROM projects WHERE org_id = $1 AND archived_at IS NULL ORDER BY name;

-- name: ArchiveProject :one
UPDATE projects SET archived_at = now() WHERE id = $1 AND archived_at IS NULL RETURNING archived_at;

-- name: ProjectProgress :many
SELECT p.id, p.name,
       count(t.id) AS tasks,
       count(t.id) FILTER (WHERE t.state = 'done') AS done,
       coalesce(round(100.0 * count(t.id) FILTER (WHERE t.state = 'done') / nullif(count(t.id), 0), 1), 0)::numeric AS percent_done
FROM projects p LEFT JOIN tasks t ON t.project_id = p.id
WHERE p.org_id = $1
GROUP BY p.id, p.name
ORDER BY p.name;

-- name: ProjectBudgets :many
SELECT name, budget, sum(budget) OVER () AS total_budget,
       rank() OVER (ORDER BY budget DESC NULLS LAST) AS budget_rank
FROM projects WHERE org_id = $1;

-- name: ProjectsWithOverdueTasks :many
SELECT DISTINCT p.id, p.name FROM projects p
JOIN tasks t ON t.project_id = p.id
WHERE t.due_on < current_date AND t.state <> 'done'
ORDER BY p.id;

-- name: RenameProject :exec
UPDATE projects SET name = $2 WHERE id = $1;

-- name: ProjectsCreatedPerMonth :many
SELECT date_trunc('month', created_at)::timestamptz AS month, count(*) AS created
FROM projects WHERE org_id = $1 GROUP BY 1 ORDER BY 1;

-- name: SetProjectBudget :execresult
UPDATE projects SET budget = sqlc.narg(budget) WHERE id = @id;
