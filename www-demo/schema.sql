-- The demo's schema, applied as root by the demo command (www-demo/tools/seed.mjs) on every
-- start. Every statement is idempotent: "already exists" answers are expected on re-runs.
-- ${NAME} placeholders are filled in by the seed script (user names and passwords).

CREATE NAMESPACE IF NOT EXISTS demo;

-- The private inbox: a USER table, so every user sees only their own rows. Users write
-- notes here (with optional attachments); the topic worker answers as "bot" with reply_to.
CREATE TABLE IF NOT EXISTS demo.inbox (
  id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(),
  body TEXT,
  author TEXT NOT NULL DEFAULT 'me',
  attachment FILE,
  reply_to TEXT,
  edited_at TIMESTAMP,
  created_at TIMESTAMP NOT NULL DEFAULT NOW()
) WITH (TYPE = 'USER');

-- The shared room: a SHARED table everyone can read (ACCESS_LEVEL PUBLIC). Plain users may
-- not write SHARED tables (PROTOCOL.md §9.1), so posts go through demo.room_outbox below
-- and the topic worker (a service user) relays them here.
CREATE TABLE IF NOT EXISTS demo.room (
  id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(),
  author TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT NOW()
) WITH (TYPE = 'SHARED', ACCESS_LEVEL = 'PUBLIC');

-- A user's posts waiting for the worker: a USER table, drained by the worker.
CREATE TABLE IF NOT EXISTS demo.room_outbox (
  id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(),
  body TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT NOW()
) WITH (TYPE = 'USER');

-- Users: two people and the service account of the topic worker.
CREATE USER '${ALICE_USER}' WITH PASSWORD '${ALICE_PASSWORD}' ROLE user;
CREATE USER '${BOB_USER}' WITH PASSWORD '${BOB_PASSWORD}' ROLE user;
CREATE USER '${BOT_USER}' WITH PASSWORD '${BOT_PASSWORD}' ROLE service;

-- The topic the worker consumes: every new inbox message and every room post.
CREATE TOPIC demo.activity PARTITIONS 1;
ALTER TOPIC demo.activity ADD SOURCE demo.inbox ON INSERT;
ALTER TOPIC demo.activity ADD SOURCE demo.room_outbox ON INSERT;
