-- Content nodes get a slug (unique among siblings) and their tree path (the slugs from the root
-- down, "2026/hello"), so a node is found by its URL with one index lookup. Existing nodes are
-- given slugs and paths by modula/db/content_paths.py right after this file; NULLs never clash
-- in the unique index meanwhile.
ALTER TABLE content_data ADD COLUMN slug VARCHAR(128);
ALTER TABLE content_data ADD COLUMN tree_path TEXT;
CREATE UNIQUE INDEX ix_content_data_tree_path ON content_data (route_id, tree_path);
