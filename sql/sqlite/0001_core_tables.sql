-- Core CMS tables. Generated once from modula/db/core_tables.py; later changes are new files.

CREATE TABLE datatypes (
	id INTEGER NOT NULL, 
	label VARCHAR(255) NOT NULL, 
	type VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE fields (
	id INTEGER NOT NULL, 
	label VARCHAR(255) NOT NULL, 
	type VARCHAR(32) NOT NULL, 
	required BOOLEAN DEFAULT 0 NOT NULL, 
	data TEXT, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE media (
	id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	url TEXT NOT NULL, 
	mime_type VARCHAR(128), 
	size_bytes BIGINT, 
	alt TEXT, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE plugins (
	id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	version VARCHAR(64) NOT NULL, 
	checksum VARCHAR(128) NOT NULL, 
	enabled BOOLEAN DEFAULT 1 NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);

CREATE TABLE roles (
	id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	label VARCHAR(255) NOT NULL, 
	builtin BOOLEAN DEFAULT 0 NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);

CREATE TABLE schema_state (
	id INTEGER NOT NULL, 
	generation INTEGER NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE sites (
	id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	hostname VARCHAR(255), 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (hostname)
);

CREATE TABLE users (
	id INTEGER NOT NULL, 
	username VARCHAR(64) NOT NULL, 
	email VARCHAR(255) NOT NULL, 
	password_hash VARCHAR(255), 
	is_active BOOLEAN DEFAULT 1 NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (username), 
	UNIQUE (email)
);

CREATE TABLE datatypes_fields (
	id INTEGER NOT NULL, 
	datatype_id INTEGER NOT NULL, 
	field_id INTEGER NOT NULL, 
	position INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_datatypes_fields_pair UNIQUE (datatype_id, field_id), 
	FOREIGN KEY(datatype_id) REFERENCES datatypes (id) ON DELETE CASCADE, 
	FOREIGN KEY(field_id) REFERENCES fields (id) ON DELETE CASCADE
);

CREATE INDEX ix_datatypes_fields_datatype_id ON datatypes_fields (datatype_id);

CREATE INDEX ix_datatypes_fields_field_id ON datatypes_fields (field_id);

CREATE TABLE media_dimensions (
	id INTEGER NOT NULL, 
	media_id INTEGER NOT NULL, 
	label VARCHAR(64) NOT NULL, 
	width INTEGER NOT NULL, 
	height INTEGER NOT NULL, 
	url TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(media_id) REFERENCES media (id) ON DELETE CASCADE
);

CREATE INDEX ix_media_dimensions_media_id ON media_dimensions (media_id);

CREATE TABLE permissions (
	id INTEGER NOT NULL, 
	role_id INTEGER NOT NULL, 
	resource VARCHAR(128) NOT NULL, 
	action VARCHAR(16) NOT NULL, 
	row_rule VARCHAR(64), 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_permissions_role_resource_action UNIQUE (role_id, resource, action), 
	FOREIGN KEY(role_id) REFERENCES roles (id) ON DELETE CASCADE
);

CREATE INDEX ix_permissions_role_id ON permissions (role_id);

CREATE TABLE routes (
	id INTEGER NOT NULL, 
	site_id INTEGER, 
	slug VARCHAR(255) NOT NULL, 
	title VARCHAR(255) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_routes_site_slug UNIQUE (site_id, slug), 
	FOREIGN KEY(site_id) REFERENCES sites (id) ON DELETE CASCADE
);

CREATE INDEX ix_routes_site_id ON routes (site_id);

CREATE TABLE sessions (
	id INTEGER NOT NULL, 
	user_id INTEGER NOT NULL, 
	token_hash VARCHAR(128) NOT NULL, 
	expires_at DATETIME NOT NULL, 
	last_access_at DATETIME NOT NULL, 
	ip VARCHAR(64), 
	user_agent TEXT, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
	UNIQUE (token_hash)
);

CREATE INDEX ix_sessions_user_id ON sessions (user_id);

CREATE TABLE tokens (
	id INTEGER NOT NULL, 
	user_id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	token_hash VARCHAR(128) NOT NULL, 
	expires_at DATETIME, 
	last_used_at DATETIME, 
	revoked_at DATETIME, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
	UNIQUE (token_hash)
);

CREATE INDEX ix_tokens_user_id ON tokens (user_id);

CREATE TABLE user_roles (
	user_id INTEGER NOT NULL, 
	role_id INTEGER NOT NULL, 
	PRIMARY KEY (user_id, role_id), 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
	FOREIGN KEY(role_id) REFERENCES roles (id) ON DELETE CASCADE
);

CREATE INDEX ix_user_roles_role_id ON user_roles (role_id);

CREATE TABLE content_data (
	id INTEGER NOT NULL, 
	route_id INTEGER NOT NULL, 
	datatype_id INTEGER NOT NULL, 
	parent_id INTEGER, 
	position INTEGER NOT NULL, 
	author_id INTEGER, 
	status VARCHAR(16) DEFAULT 'published' NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(route_id) REFERENCES routes (id) ON DELETE CASCADE, 
	FOREIGN KEY(datatype_id) REFERENCES datatypes (id), 
	FOREIGN KEY(parent_id) REFERENCES content_data (id) ON DELETE CASCADE, 
	FOREIGN KEY(author_id) REFERENCES users (id) ON DELETE SET NULL
);

CREATE INDEX ix_content_data_author_id ON content_data (author_id);

CREATE INDEX ix_content_data_datatype_id ON content_data (datatype_id);

CREATE INDEX ix_content_data_parent_id ON content_data (parent_id);

CREATE INDEX ix_content_data_route_id ON content_data (route_id);

CREATE TABLE content_fields (
	id INTEGER NOT NULL, 
	content_data_id INTEGER NOT NULL, 
	field_id INTEGER NOT NULL, 
	value TEXT, 
	value_number FLOAT, 
	value_time DATETIME, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_content_fields_pair UNIQUE (content_data_id, field_id), 
	FOREIGN KEY(content_data_id) REFERENCES content_data (id) ON DELETE CASCADE, 
	FOREIGN KEY(field_id) REFERENCES fields (id)
);

CREATE INDEX ix_content_fields_content_data_id ON content_fields (content_data_id);

CREATE INDEX ix_content_fields_field_id ON content_fields (field_id);

CREATE INDEX ix_content_fields_field_number ON content_fields (field_id, value_number);

CREATE INDEX ix_content_fields_field_time ON content_fields (field_id, value_time);
