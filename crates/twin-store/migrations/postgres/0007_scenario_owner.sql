-- Scenarios have an owner: the account that created it. Scenarios made before have none (NULL): only administrators
-- may change them.
ALTER TABLE scenarios ADD COLUMN owner text;
