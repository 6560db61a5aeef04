-- Nodes cache API keys with their accounts (a request with a key costs no read); a change that can refuse a key or
-- change what it may do, made on any node, is announced on the `urbantwin_config` channel so that every node drops
-- that cache: an account changed or removed, a key revoked, re-scoped, given another expiry or removed. The touch of
-- a key's last use is not announced.
CREATE TRIGGER accounts_changed AFTER UPDATE OR DELETE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION urbantwin_config_changed();
CREATE TRIGGER api_keys_removed AFTER DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION urbantwin_config_changed();
CREATE FUNCTION urbantwin_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_ms IS DISTINCT FROM NEW.revoked_ms OR OLD.expires_ms IS DISTINCT FROM NEW.expires_ms
       OR OLD.scopes IS DISTINCT FROM NEW.scopes OR OLD.hash IS DISTINCT FROM NEW.hash
       OR OLD.account IS DISTINCT FROM NEW.account THEN
        PERFORM pg_notify('urbantwin_config', 'api_keys');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER api_keys_changed AFTER UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION urbantwin_key_changed();
