-- Media that a client can upload and the server can serve: what the bytes are (their sha-256,
-- which names them in every storage backend, so the same upload is stored once), what they show
-- (width and height of an image), where an editor filed them and who uploaded them. Each named
-- size in media_dimensions has bytes of its own. media_chunks holds the bytes when the storage
-- backend is `database` (MODULA_MEDIA_STORAGE), in chunks so no file is ever whole in memory.
ALTER TABLE media ADD COLUMN content_hash VARCHAR(64);
ALTER TABLE media ADD COLUMN width INTEGER;
ALTER TABLE media ADD COLUMN height INTEGER;
ALTER TABLE media ADD COLUMN folder VARCHAR(255);
ALTER TABLE media ADD COLUMN uploader_id INTEGER REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX ix_media_content_hash ON media (content_hash);
CREATE INDEX ix_media_folder ON media (folder);
CREATE INDEX ix_media_uploader_id ON media (uploader_id);
ALTER TABLE media_dimensions ADD COLUMN content_hash VARCHAR(64);
ALTER TABLE media_dimensions ADD COLUMN mime_type VARCHAR(128);
ALTER TABLE media_dimensions ADD COLUMN size_bytes BIGINT;
CREATE INDEX ix_media_dimensions_content_hash ON media_dimensions (content_hash);
CREATE TABLE media_chunks (
	content_hash VARCHAR(64) NOT NULL,
	seq INTEGER NOT NULL,
	data BYTEA NOT NULL,
	PRIMARY KEY (content_hash, seq)
);
