-- Privacy lists (XEP-0016), which also hold the blocklist (XEP-0191: the default list's
-- items of type jid, action deny and no stanza kinds). Expand-only: new tables, all owned
-- by an account (ON DELETE CASCADE). Changes lock the account row (FOR NO KEY UPDATE),
-- which serialises them per user, like roster changes.

-- One row per list. is_default marks the account's default list (at most one, below).
-- Names are compared byte for byte; the store sorts them with COLLATE "C".
CREATE TABLE privacy_lists (
  domain text NOT NULL,
  username text NOT NULL,
  name text NOT NULL,
  is_default boolean NOT NULL DEFAULT false,
  PRIMARY KEY (domain, username, name),
  FOREIGN KEY (domain, username) REFERENCES accounts (domain, username) ON DELETE CASCADE
);
-- At most one default list per account. Not deferrable: a change of default clears the
-- old one before setting the new one.
CREATE UNIQUE INDEX privacy_lists_one_default ON privacy_lists (domain, username)
  WHERE is_default;

-- A list's items, keyed by their order (an unsignedInt in XEP-0016, unique within a list).
-- type NULL is the fall-through item (no type, empty value). kinds holds the stanza kinds
-- the item applies to as bits (1 message, 2 iq, 4 presence-in, 8 presence-out); 0 means
-- every stanza (the item had no child elements). A list's items are replaced as a whole.
CREATE TABLE privacy_items (
  domain text NOT NULL,
  username text NOT NULL,
  name text NOT NULL,
  ord bigint NOT NULL CHECK (ord BETWEEN 0 AND 4294967295),
  type text CHECK (type IN ('jid', 'group', 'subscription')),
  value text NOT NULL DEFAULT '',
  action text NOT NULL CHECK (action IN ('allow', 'deny')),
  kinds smallint NOT NULL DEFAULT 0 CHECK (kinds BETWEEN 0 AND 15),
  PRIMARY KEY (domain, username, name, ord),
  FOREIGN KEY (domain, username, name) REFERENCES privacy_lists (domain, username, name)
    ON DELETE CASCADE
);
