-- Permissions a plugin's manifest proposes ("grants"); an admin approves them before they apply.
CREATE TABLE plugin_grant_requests (
	plugin VARCHAR(64) NOT NULL,
	role VARCHAR(64) NOT NULL,
	resource VARCHAR(128) NOT NULL,
	action VARCHAR(16) NOT NULL,
	row_rule VARCHAR(64),
	requested_at DATETIME NOT NULL,
	PRIMARY KEY (plugin, role, resource, action)
);
