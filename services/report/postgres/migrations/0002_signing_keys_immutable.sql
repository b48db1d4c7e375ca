-- Recorded signing keys are immutable, as report versions are: the trigger
-- refuses UPDATE, DELETE and TRUNCATE, so a key cannot be swapped under the
-- versions it signed. (Which keys verify is configuration, not this table:
-- see REPORT_TRUSTED_PUBLIC_KEYS.)
CREATE FUNCTION signing_keys_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'signing keys are immutable: % refused', TG_OP
		USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER signing_keys_immutable BEFORE UPDATE OR DELETE ON signing_keys
	FOR EACH ROW EXECUTE FUNCTION signing_keys_immutable();
CREATE TRIGGER signing_keys_no_truncate BEFORE TRUNCATE ON signing_keys
	FOR EACH STATEMENT EXECUTE FUNCTION signing_keys_immutable();
