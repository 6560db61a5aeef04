-- Every node caches what it builds from the registered JSON-LD contexts and the datasets; a change to either, made on
-- any node, is announced on the `urbantwin_config` channel so that the other nodes drop those caches.
CREATE FUNCTION urbantwin_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('urbantwin_config', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
CREATE TRIGGER contexts_changed AFTER INSERT OR UPDATE OR DELETE ON contexts
    FOR EACH STATEMENT EXECUTE FUNCTION urbantwin_config_changed();
CREATE TRIGGER datasets_changed AFTER INSERT OR UPDATE OR DELETE ON datasets
    FOR EACH STATEMENT EXECUTE FUNCTION urbantwin_config_changed();
