-- Changes that workers remember things about are announced on the
-- "bulletdrop" channel, whoever makes them: the module, or someone with
-- psql.  The payload names what changed.  Each worker's first database
-- connection LISTENs (src/ngx_http_bulletdrop_db.c).
--
-- Statement triggers: one notification per statement, and PostgreSQL
-- sends a transaction's identical notifications once.  Uploads change
-- neither table (usage lives in `usage`; an API key's last_used_at is not
-- a change anyone remembers).

CREATE FUNCTION bd_notify() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('bulletdrop', TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_notify
    AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bd_notify('auth');

CREATE TRIGGER api_keys_notify
    AFTER UPDATE OF key_hash, user_id OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bd_notify('auth');
