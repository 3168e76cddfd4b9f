-- createContent in one round trip on PostgreSQL (issue 11). The process checks the values against
-- the datatype's fields as it last read them, with the fields generation they were read at; this
-- function re-checks, under the route's lock, that what it knew is still so (the route and the
-- parent exist, the datatype exists, the fields generation has not moved) before it inserts the
-- node at the end of its siblings and its values. Each statement of a plpgsql function takes a new
-- snapshot, so the sibling positions are read after the lock is held. When anything differs it
-- raises SQLSTATE MDL01 and writes nothing: the process then runs the checked write, statement by
-- statement, which reports what is wrong.

-- The fields generation moves, in the changing transaction, with every change to a field or to
-- which fields a datatype has (a datatype's deletion cascades to datatypes_fields). Triggers, not
-- the services, move it, so no writer can forget to: raw SQL, the CLI and other processes included.
CREATE TABLE fields_state (
	id INTEGER NOT NULL,
	generation BIGINT NOT NULL,
	PRIMARY KEY (id)
);
INSERT INTO fields_state (id, generation) VALUES (1, 1);
CREATE FUNCTION modula_fields_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE fields_state SET generation = generation + 1 WHERE id = 1; RETURN NULL; END $$;
CREATE TRIGGER fields_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fields FOR EACH STATEMENT EXECUTE FUNCTION modula_fields_changed();
CREATE TRIGGER datatypes_fields_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON datatypes_fields FOR EACH STATEMENT EXECUTE FUNCTION modula_fields_changed();

-- It sets the node's slug and path (0016) too: p_slug as given (a
-- sibling that has it fails the unique index), or, when it is NULL, p_base made free among the
-- siblings as modula/db/content_paths.py free_slug does (base, base-2, base-3, …; each try one
-- lookup on ix_content_data_tree_path, under the route's lock).
CREATE FUNCTION modula_create_content(
  p_route integer, p_datatype integer, p_parent integer, p_author integer, p_status text,
  p_now timestamptz, p_fields_generation bigint,
  p_field_ids integer[], p_texts text[], p_numbers double precision[], p_times timestamptz[],
  p_slug text, p_base text
) RETURNS SETOF content_data LANGUAGE plpgsql AS $$
DECLARE
  node content_data;
  v_next_position integer;
  v_parent_path text;
  v_slug text;
  v_suffix text;
  v_number integer := 2;
  v_route_found boolean;
  v_parent_found boolean := true;
BEGIN
  PERFORM 1 FROM routes WHERE id = p_route FOR UPDATE;
  v_route_found := FOUND;
  IF p_parent IS NOT NULL THEN
    SELECT tree_path INTO v_parent_path FROM content_data WHERE id = p_parent AND route_id = p_route;
    v_parent_found := FOUND;
  END IF;
  IF NOT v_route_found OR NOT v_parent_found
     OR NOT EXISTS (SELECT 1 FROM fields_state WHERE id = 1 AND generation = p_fields_generation)
     OR NOT EXISTS (SELECT 1 FROM datatypes WHERE id = p_datatype) THEN
    RAISE EXCEPTION 'createContent: the route, parent or fields are not as the process knew them'
      USING ERRCODE = 'MDL01';
  END IF;
  v_slug := coalesce(p_slug, p_base);
  IF p_slug IS NULL THEN
    WHILE EXISTS (SELECT 1 FROM content_data WHERE route_id = p_route
                  AND tree_path = CASE WHEN v_parent_path IS NULL THEN v_slug ELSE v_parent_path || '/' || v_slug END) LOOP
      v_suffix := '-' || v_number;
      v_slug := rtrim(left(p_base, 128 - length(v_suffix)), '-') || v_suffix;
      v_number := v_number + 1;
    END LOOP;
  END IF;
  -- Two spellings, so that each is one lookup on ix_content_data_siblings.
  IF p_parent IS NULL THEN
    SELECT coalesce(max(position) + 1, 0) INTO v_next_position FROM content_data WHERE route_id = p_route AND parent_id IS NULL;
  ELSE
    SELECT coalesce(max(position) + 1, 0) INTO v_next_position FROM content_data WHERE route_id = p_route AND parent_id = p_parent;
  END IF;
  INSERT INTO content_data (route_id, datatype_id, parent_id, position, author_id, status, slug, tree_path, created_at, updated_at)
  VALUES (p_route, p_datatype, p_parent, v_next_position, p_author, p_status, v_slug,
          CASE WHEN v_parent_path IS NULL THEN v_slug ELSE v_parent_path || '/' || v_slug END, p_now, p_now)
  RETURNING * INTO node;
  INSERT INTO content_fields (content_data_id, field_id, value, value_number, value_time)
  SELECT node.id, v.field_id, v.value, v.value_number, v.value_time
  FROM unnest(p_field_ids, p_texts, p_numbers, p_times) AS v(field_id, value, value_number, value_time);
  RETURN NEXT node;
END
$$;

-- Only the server's own role calls it (plugin roles run their SQL as other roles).
REVOKE EXECUTE ON FUNCTION modula_create_content(integer, integer, integer, integer, text, timestamptz, bigint, integer[], text[], double precision[], timestamptz[], text, text) FROM PUBLIC;
