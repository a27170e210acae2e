-- name: CreateOrganization :one
INSERT INTO organizations (slug, name, plan) VALUES (@slug, @name, @plan)
RETURNING *;

-- name: GetOrganizationBySlug :one
SELECT * FROM organizations WHERE slug = @slug;

-- name: ListOrganizations :many
SELECT * FROM organizations ORDER BY created_at DESC, id DESC LIMIT @page_size OFFSET @page_offset;

-- name: RenameOrganization :execrows
UPDATE organizations SET name = @name WHERE id = @id;

-- name: UpdateOrganizationSettings :one
-- Merge keys into the settings document.
UPDATE organizations SET settings = settings || @patch::jsonb WHERE id = @id
RETURNING settings;

-- name: RemoveOrganizationSetting :exec
UPDATE organizations SET settings = settings - @key::text WHERE id = @id;

-- name: OrganizationSetting :one
SELECT settings ->> @key::text AS value FROM organizations WHERE id = @id;

-- name: CountOrganizationsByPlan :many
SELECT plan, count(*) AS organizations FROM organizations GROUP BY plan ORDER BY plan;

-- name: DeleteOrganization :exec
DELETE FROM organizations WHERE id = $1;

-- name: OrganizationsWithoutUsers :many
SELECT o.id, o.slug FROM organizations o
WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.org_id = o.id)
ORDER BY o.id;

-- name: UpsertOrganization :one
INSERT INTO organizations (slug, name) VALUES (@slug, @name)
ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name
RETURNING id, (xmax = 0) AS inserted;
