-- Datatype fields get a stable machine name (the GraphQL field of generated content types).
-- Existing fields are named from their labels by modula/db/field_names.py right after this file.
ALTER TABLE fields ADD COLUMN name VARCHAR(63);
