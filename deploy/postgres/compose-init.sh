#!/bin/sh
# docker-compose only: creates the per-service roles with the compose passwords.
set -e
psql -v ON_ERROR_STOP=1 -U postgres -d afteraction \
  -v intake_pw=intake-db-pw -v review_pw=review-db-pw -v report_owner_pw=report-owner-db-pw -v report_pw=report-db-pw \
  -v tracker_pw=tracker-db-pw -v notify_pw=notify-db-pw \
  -f /etc/afteraction/roles.sql
