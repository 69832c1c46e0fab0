-- matviews demo: the notification-preferences example of the seeds (AlwaysConnected, a Slack
-- clone). Users belong to organizations; channels to organizations; a user's preference for a
-- channel overrides the organization's, which overrides the application default.
\pset pager off
\pset format unaligned
\pset tuples_only on
\set QUIET on
\echo '== setup: tables and rows'
CREATE EXTENSION matviews;
CREATE TABLE organizations (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE users (id int PRIMARY KEY, organization_id int NOT NULL REFERENCES organizations, name text);
CREATE TABLE channels (id int PRIMARY KEY, organization_id int NOT NULL REFERENCES organizations, name text);
CREATE TABLE user_notification_preferences (
    id serial PRIMARY KEY,
    user_id int NOT NULL REFERENCES users,
    notification_type varchar NOT NULL,
    notification_frequency varchar NOT NULL,
    settable_id int NOT NULL,
    settable_type varchar NOT NULL,
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now());
INSERT INTO organizations VALUES (1, 'AlwaysConnected'), (2, 'Acme');
INSERT INTO users SELECT g, 1 + g % 2, 'user ' || g FROM generate_series(1, 200) g;
INSERT INTO channels VALUES (519, 1, 'notifications'), (692, 1, 'dev-notifications'),
                            (405, 2, 'general'), (5455, 2, 'random');
INSERT INTO user_notification_preferences (user_id, notification_type, notification_frequency, settable_id, settable_type)
VALUES (2, 'new_channel_message', 'desktop_and_mobile', 1, 'Organization'),
       (2, 'new_channel_message', 'never', 692, 'Channel'),
       (3, 'new_channel_message', 'mobile', 405, 'Channel');


\echo
\echo '== matviews.create: the view, with the unique index CONCURRENTLY needs'
SELECT jsonb_pretty(matviews.create(
    'backfilled_notification_preferences',
    $$SELECT users.id AS user_id,
             'new_channel_message' AS notification_type,
             COALESCE(cu.notification_frequency, ou.notification_frequency, 'desktop') AS notification_frequency,
             channels.id AS channel_id
      FROM channels
      JOIN users ON channels.organization_id = users.organization_id
      LEFT JOIN user_notification_preferences cu
             ON cu.settable_id = channels.id AND cu.settable_type = 'Channel'
            AND cu.notification_type = 'new_channel_message' AND cu.user_id = users.id
      LEFT JOIN user_notification_preferences ou
             ON ou.settable_id = channels.organization_id AND ou.settable_type = 'Organization'
            AND ou.notification_type = 'new_channel_message' AND ou.user_id = users.id$$,
    refresh_strategy => 'concurrent',
    unique_index_columns => ARRAY['user_id', 'notification_type', 'channel_id'],
    row_count_strategy => 'exact')) AS response;

\echo '== a lookup index of our own (the seeds add one for user_id, notification_type)'
CREATE INDEX backfilled_notification_preferences_lookup
    ON backfilled_notification_preferences (user_id, notification_type);

\echo '== a preference changes; a concurrent refresh keeps reads available'
UPDATE user_notification_preferences SET notification_frequency = 'desktop' WHERE user_id = 3;
SELECT jsonb_pretty(matviews.refresh('backfilled_notification_preferences', row_count_strategy => 'exact')) AS response;

\echo '== a failure is an answer, not an exception: a view that is not there'
SELECT jsonb_pretty(matviews.refresh('no_such_view')) AS response;

\echo '== concurrent refresh without a unique index: error 55000 with the exact fix as hint'
SELECT matviews.create('mv_channel_counts', 'SELECT organization_id, count(*) AS channels FROM channels GROUP BY 1') ->> 'status' AS created;
SELECT jsonb_pretty(matviews.refresh('mv_channel_counts', strategy => 'concurrent') -> 'error') AS error;

\echo '== matviews.alter: per-view options'
SELECT jsonb_pretty(matviews.alter('backfilled_notification_preferences',
                                   options => '{"lock_timeout": "2s", "statement_timeout": "5min"}')) AS response;

\echo '== background: enqueue a refresh; it runs after this statement commits, in a job worker'
SELECT matviews.enqueue('backfilled_notification_preferences') ->> 'run_id' AS queued_run \gset
SELECT jsonb_pretty(matviews.wait(:queued_run, '30 seconds')) AS response;

\echo '== schedule: every 2 seconds after the previous run finished (the re-queue pattern of the seeds)'
SELECT jsonb_pretty(matviews.schedule('backfilled_notification_preferences', '2 seconds')) AS response;
\echo '(waiting a few seconds for scheduled runs)'
SELECT pg_sleep(5);
SELECT matviews.unschedule('backfilled_notification_preferences') ->> 'status' AS unscheduled;

\echo '== swap: zero-downtime redefinition (a new column), indexes and grants carried over'
SELECT jsonb_pretty(matviews.swap('backfilled_notification_preferences',
    $$SELECT users.id AS user_id,
             'new_channel_message' AS notification_type,
             COALESCE(cu.notification_frequency, ou.notification_frequency, 'desktop') AS notification_frequency,
             channels.id AS channel_id,
             channels.name AS channel_name
      FROM channels
      JOIN users ON channels.organization_id = users.organization_id
      LEFT JOIN user_notification_preferences cu
             ON cu.settable_id = channels.id AND cu.settable_type = 'Channel'
            AND cu.notification_type = 'new_channel_message' AND cu.user_id = users.id
      LEFT JOIN user_notification_preferences ou
             ON ou.settable_id = channels.organization_id AND ou.settable_type = 'Organization'
            AND ou.notification_type = 'new_channel_message' AND ou.user_id = users.id$$) -> 'response') AS response;

\echo '== watch: refresh on change; a preference changes and the view follows within a second'
SELECT jsonb_pretty(matviews.watch('backfilled_notification_preferences', min_interval => '0') -> 'response') AS response;
-- Polls the view (each statement of a plpgsql function sees the latest commits) until user 3's
-- preference for channel 405 reads `never`, and says how long after the writer's commit.
CREATE FUNCTION pg_temp.followed_after(committed timestamptz) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    LOOP
        IF EXISTS (SELECT 1 FROM backfilled_notification_preferences
                   WHERE user_id = 3 AND channel_id = 405 AND notification_frequency = 'never') THEN
            RETURN format('the view followed the change %s ms after its commit (within a second: %s)',
                          round(extract(epoch FROM clock_timestamp() - committed) * 1000),
                          clock_timestamp() - committed < interval '1 second');
        END IF;
        IF clock_timestamp() > committed + interval '10 seconds' THEN
            RETURN 'the view did not follow within 10 seconds';
        END IF;
        PERFORM pg_sleep(0.005);
    END LOOP;
END $$;
-- The new watch refreshes the view once; then the application writes, and only writes.
DO $$ BEGIN
    WHILE (SELECT stale FROM matviews.status WHERE view = 'public.backfilled_notification_preferences') LOOP
        PERFORM pg_sleep(0.01);
    END LOOP;
END $$;
UPDATE user_notification_preferences SET notification_frequency = 'never' WHERE user_id = 3;
SELECT pg_temp.followed_after(clock_timestamp());
SELECT format('%s watch run(s), strategy %s', count(*), string_agg(DISTINCT strategy, ','))
FROM matviews.runs WHERE view = 'public.backfilled_notification_preferences' AND trigger = 'watch';

\echo '== matviews.status'
\pset format aligned
\pset tuples_only off
SELECT view, exists, populated, strategy, schedule, watched, stale, last_status, consecutive_failures, row_estimate, owner
FROM matviews.status ORDER BY view;

\echo '== matviews.runs: every operation, recorded'
SELECT id, view, operation, strategy, status, trigger, role, row_count_before, row_count_after,
       error->>'sqlstate' AS sqlstate
FROM matviews.runs ORDER BY id;

\echo '== matviews.delete'
\pset format unaligned
\pset tuples_only on
SELECT jsonb_pretty(matviews.delete('mv_channel_counts')) AS response;
