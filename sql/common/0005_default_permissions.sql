-- Default permissions of the built-in roles. Admin has none: it may do everything.
-- Editors work on the core content types, viewers read them, and anonymous visitors read the
-- site structure and published content only. Plugin tables (resources named by their table)
-- are granted nothing here: they stay admin-only until an admin grants them.
INSERT INTO permissions (role_id, resource, action, row_rule, created_at)
SELECT roles.id, grants.resource, grants.action, grants.row_rule, CURRENT_TIMESTAMP
FROM roles
JOIN (
    SELECT 'editor' AS role, 'site' AS resource, 'read' AS action, NULL AS row_rule
    UNION ALL SELECT 'editor', 'site', 'create', NULL
    UNION ALL SELECT 'editor', 'site', 'update', NULL
    UNION ALL SELECT 'editor', 'site', 'delete', NULL
    UNION ALL SELECT 'editor', 'route', 'read', NULL
    UNION ALL SELECT 'editor', 'route', 'create', NULL
    UNION ALL SELECT 'editor', 'route', 'update', NULL
    UNION ALL SELECT 'editor', 'route', 'delete', NULL
    UNION ALL SELECT 'editor', 'datatype', 'read', NULL
    UNION ALL SELECT 'editor', 'datatype', 'create', NULL
    UNION ALL SELECT 'editor', 'datatype', 'update', NULL
    UNION ALL SELECT 'editor', 'datatype', 'delete', NULL
    UNION ALL SELECT 'editor', 'content', 'read', NULL
    UNION ALL SELECT 'editor', 'content', 'create', NULL
    UNION ALL SELECT 'editor', 'content', 'update', NULL
    UNION ALL SELECT 'editor', 'content', 'delete', NULL
    UNION ALL SELECT 'editor', 'media', 'read', NULL
    UNION ALL SELECT 'editor', 'media', 'create', NULL
    UNION ALL SELECT 'editor', 'media', 'update', NULL
    UNION ALL SELECT 'editor', 'media', 'delete', NULL
    UNION ALL SELECT 'viewer', 'site', 'read', NULL
    UNION ALL SELECT 'viewer', 'route', 'read', NULL
    UNION ALL SELECT 'viewer', 'datatype', 'read', NULL
    UNION ALL SELECT 'viewer', 'content', 'read', NULL
    UNION ALL SELECT 'viewer', 'media', 'read', NULL
    UNION ALL SELECT 'anonymous', 'site', 'read', NULL
    UNION ALL SELECT 'anonymous', 'route', 'read', NULL
    UNION ALL SELECT 'anonymous', 'datatype', 'read', NULL
    UNION ALL SELECT 'anonymous', 'content', 'read', 'published'
) AS grants ON grants.role = roles.name;
