-- String functions whose work grows with the product of their arguments' lengths and which never
-- check for interrupts: statement_timeout, the driver's cancel request and even
-- pg_terminate_backend wait until they return (btrim of 100 kB by a 100 kB set runs for half a
-- minute; with longer strings, hours), and meanwhile the backend holds up every DROP DATABASE in
-- the cluster. No plugin login role may call them. The one-argument trims (spaces only) stay
-- with PUBLIC; the server keeps everything.
--
-- Like 0006_revoke_public_functions: once per database, effective only when migrating as a
-- superuser (the functions' owner); provision_plugin_role logs any the plugin role still has.
REVOKE EXECUTE ON FUNCTION pg_catalog.btrim(text, text), pg_catalog.ltrim(text, text), pg_catalog.rtrim(text, text), pg_catalog.btrim(bytea, bytea), pg_catalog.ltrim(bytea, bytea), pg_catalog.rtrim(bytea, bytea), pg_catalog.translate(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_catalog.btrim(text, text), pg_catalog.ltrim(text, text), pg_catalog.rtrim(text, text), pg_catalog.btrim(bytea, bytea), pg_catalog.ltrim(bytea, bytea), pg_catalog.rtrim(bytea, bytea), pg_catalog.translate(text, text, text) TO CURRENT_USER;
