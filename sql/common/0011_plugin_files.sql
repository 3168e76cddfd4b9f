-- The registry holds each installed plugin's code, not only its name and checksum: every server
-- process loads plugins from here, so a replica needs no plugin folder of its own and every
-- process at one schema generation runs the same code. `installed_generation` is the schema
-- generation of the transaction that last recorded the plugin: a process reloads a plugin when it
-- moved (also for a version put back after a failed upgrade, whose tables may have grown).
-- `tables_generation` is the generation that last created or changed its tables: while it stays, a
-- process loading a new version keeps the table specs it introspected before.
-- `source` says where the files came from (a folder, as given to `modula plugins install`).
ALTER TABLE plugins ADD COLUMN installed_generation INTEGER DEFAULT 0 NOT NULL;
ALTER TABLE plugins ADD COLUMN tables_generation INTEGER DEFAULT 0 NOT NULL;
ALTER TABLE plugins ADD COLUMN source VARCHAR(1024) DEFAULT '' NOT NULL;
CREATE TABLE plugin_files (
	plugin_id INTEGER NOT NULL,
	path VARCHAR(255) NOT NULL,
	content TEXT NOT NULL,
	PRIMARY KEY (plugin_id, path),
	FOREIGN KEY(plugin_id) REFERENCES plugins (id) ON DELETE CASCADE
);
