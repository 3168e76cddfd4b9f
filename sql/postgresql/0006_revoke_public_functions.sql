-- Functions PostgreSQL lets PUBLIC execute that no plugin login role should reach: pg_notify
-- sends notifications to any channel (listeners outside Modula included), and the large-object
-- functions create and fill storage outside every table and grant. The server keeps them.
--
-- A migration, not provision_plugin_role: function privileges live in each database's catalog,
-- so this is a once-per-database change to what PUBLIC may do, which is what migrations are
-- (they run once in every database Modula manages, before any plugin is installed), whereas
-- provisioning is per plugin. The functions belong to the bootstrap superuser: migrating as
-- another role only draws a warning per function and changes nothing, which
-- provision_plugin_role then reports in the log.
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text), pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer), pg_catalog.lo_open(oid, integer), pg_catalog.lo_close(integer), pg_catalog.loread(integer, integer), pg_catalog.lowrite(integer, bytea), pg_catalog.lo_lseek(integer, integer, integer), pg_catalog.lo_lseek64(integer, bigint, integer), pg_catalog.lo_tell(integer), pg_catalog.lo_tell64(integer), pg_catalog.lo_truncate(integer, integer), pg_catalog.lo_truncate64(integer, bigint), pg_catalog.lo_unlink(oid), pg_catalog.lo_from_bytea(oid, bytea), pg_catalog.lo_get(oid), pg_catalog.lo_get(oid, bigint, integer), pg_catalog.lo_put(oid, bigint, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text), pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer), pg_catalog.lo_open(oid, integer), pg_catalog.lo_close(integer), pg_catalog.loread(integer, integer), pg_catalog.lowrite(integer, bytea), pg_catalog.lo_lseek(integer, integer, integer), pg_catalog.lo_lseek64(integer, bigint, integer), pg_catalog.lo_tell(integer), pg_catalog.lo_tell64(integer), pg_catalog.lo_truncate(integer, integer), pg_catalog.lo_truncate64(integer, bigint), pg_catalog.lo_unlink(oid), pg_catalog.lo_from_bytea(oid, bytea), pg_catalog.lo_get(oid), pg_catalog.lo_get(oid, bigint, integer), pg_catalog.lo_put(oid, bigint, bytea) TO CURRENT_USER;
