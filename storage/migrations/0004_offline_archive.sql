-- Offline messages (XEP-0160) and message archives (XEP-0313). Expand-only: new tables,
-- all owned by an account (ON DELETE CASCADE). The foreign keys' (domain, username) is
-- the leading part of an index on every table, so removing an account does not scan them.

-- Messages for a user with no available resource, delivered (and deleted) when the user
-- comes online. id orders them: a put locks the account row (FOR NO KEY UPDATE), counts
-- the user's messages against the limit and inserts in one transaction, so one user's
-- messages get their ids in arrival order and never exceed the limit.
CREATE TABLE offline_messages (
  id bigserial PRIMARY KEY,
  domain text NOT NULL,
  username text NOT NULL,
  stanza text NOT NULL,
  stored_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (domain, username) REFERENCES accounts (domain, username) ON DELETE CASCADE
);
-- A user's messages oldest first (load), counted against the limit (put, count).
CREATE INDEX offline_messages_owner ON offline_messages (domain, username, id);

-- Each owner's archive. seq is the archive order (assigned at insert, in the order of
-- one append's entries); id the XEP-0359 stanza-id clients page with, unique per owner;
-- with_jid the other party's bare JID; stamp when the message was archived (the
-- inserting transaction's now(), microseconds). Rows are never updated; expiry deletes
-- the oldest by stamp.
--
-- Indexes, one per access path, so that every query stays an index range with millions
-- of rows (tests/unit/storage/test_archive_store.cpp checks the plans):
-- - the primary key (domain, username, seq): an owner's archive in order, both ways
--   (first page, last page, after/before an id), and its count (index-only);
-- - (domain, username, id): uniqueness, the after/before-id lookups, the ids filter;
-- - (domain, username, with_jid, seq) INCLUDE (stamp): one conversation in order, and
--   its count, also with a time range, from the index alone;
-- - (domain, username, stamp) INCLUDE (seq): a time range (start/end) of an owner, and
--   its count;
-- - (stamp): expiry across all owners, oldest first, in batches.
CREATE TABLE archive_messages (
  seq bigserial NOT NULL,
  domain text NOT NULL,
  username text NOT NULL,
  id text NOT NULL,
  with_jid text NOT NULL,
  stamp timestamptz NOT NULL DEFAULT now(),
  stanza text NOT NULL,
  PRIMARY KEY (domain, username, seq),
  UNIQUE (domain, username, id),
  FOREIGN KEY (domain, username) REFERENCES accounts (domain, username) ON DELETE CASCADE
);
CREATE INDEX archive_messages_with ON archive_messages (domain, username, with_jid, seq)
  INCLUDE (stamp);
CREATE INDEX archive_messages_owner_stamp ON archive_messages (domain, username, stamp)
  INCLUDE (seq);
CREATE INDEX archive_messages_stamp ON archive_messages (stamp);

-- Archiving preferences (XEP-0313 5.2); no row: never set, the server's default applies.
-- The JID lists hold bare JIDs, sorted bytewise and unique (the store normalises them).
CREATE TABLE archive_prefs (
  domain text NOT NULL,
  username text NOT NULL,
  default_mode text NOT NULL CHECK (default_mode IN ('always', 'never', 'roster')),
  always_jids text[] NOT NULL DEFAULT '{}',
  never_jids text[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (domain, username),
  FOREIGN KEY (domain, username) REFERENCES accounts (domain, username) ON DELETE CASCADE
);
