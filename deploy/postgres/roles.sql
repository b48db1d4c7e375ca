-- One login role per service; each owns only its own schema and has no grant on
-- the others. Run once as a superuser on the afteraction database, e.g.
--   psql -v intake_pw=... -v review_pw=... -v report_owner_pw=... -v report_pw=... -v tracker_pw=... \
--        -v notify_pw=... -d afteraction -f roles.sql
-- Services create their tables in their schema at start-up (migrations under an
-- advisory lock), so the role that migrates needs CREATE on its schema, which
-- ownership gives.
--
-- report keeps evidence, so it is split in two: afteraction_report_owner owns
-- the schema and runs the migrations (REPORT_MIGRATE_DATABASE_URL), and the
-- service runs as afteraction_report (DATABASE_URL), which may insert report
-- versions, keys, certificates and custody entries but not update, delete or
-- truncate them, nor alter the tables or drop their triggers. The grants are in
-- the report migration 0005_runtime_role.sql: it grants them to the role given
-- USAGE on the schema below. The report service's tests run this file.
CREATE ROLE afteraction_intake  LOGIN PASSWORD :'intake_pw';
CREATE ROLE afteraction_review  LOGIN PASSWORD :'review_pw';
CREATE ROLE afteraction_report_owner LOGIN PASSWORD :'report_owner_pw';
CREATE ROLE afteraction_report  LOGIN PASSWORD :'report_pw';
CREATE ROLE afteraction_tracker LOGIN PASSWORD :'tracker_pw';
CREATE ROLE afteraction_notify  LOGIN PASSWORD :'notify_pw';

CREATE SCHEMA IF NOT EXISTS intake  AUTHORIZATION afteraction_intake;
CREATE SCHEMA IF NOT EXISTS review  AUTHORIZATION afteraction_review;
CREATE SCHEMA IF NOT EXISTS report  AUTHORIZATION afteraction_report_owner;
CREATE SCHEMA IF NOT EXISTS tracker AUTHORIZATION afteraction_tracker;
CREATE SCHEMA IF NOT EXISTS notify  AUTHORIZATION afteraction_notify;
GRANT USAGE ON SCHEMA report TO afteraction_report;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE CREATE ON DATABASE afteraction FROM PUBLIC;
GRANT CONNECT ON DATABASE afteraction TO afteraction_intake, afteraction_review, afteraction_report_owner,
	afteraction_report, afteraction_tracker, afteraction_notify;
