-- Sibling order lookups (next position, closing gaps) stay cheap as a route grows.
CREATE INDEX ix_content_data_siblings ON content_data (route_id, parent_id, position);
