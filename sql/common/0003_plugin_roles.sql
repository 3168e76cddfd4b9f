-- Each plugin's PostgreSQL login role and its generated password, so every server process can
-- open the plugin's own connection pool. Unused on SQLite, where an authorizer confines plugin SQL.
CREATE TABLE plugin_roles (
	plugin VARCHAR(64) NOT NULL,
	role VARCHAR(63) NOT NULL,
	password VARCHAR(128) NOT NULL,
	PRIMARY KEY (plugin)
);
