-- Rosters, presence subscriptions and last presence (RFC 6121). Expand-only: one new
-- column on accounts, the rest new tables, all owned by an account (ON DELETE CASCADE).

-- The account's roster version (RFC 6121 2.6), bumped on every change a client can see.
-- Roster changes lock the account row (FOR NO KEY UPDATE), which serialises them
-- per user. A constant default: no table rewrite.
ALTER TABLE accounts ADD COLUMN roster_version bigint NOT NULL DEFAULT 0;

-- The user's state toward each contact (RFC 6121 Appendix A) and whether the contact is
-- an item of the roster clients see. version is the roster version of the item's last
-- visible change (0 if it never was visible), so "what changed since N" is one index
-- range. An item leaving the roster with no state left is kept as a tombstone
-- (removed) so that change can still be reported to a client at an older version.
CREATE TABLE roster_items (
  domain text NOT NULL,
  username text NOT NULL,
  contact text NOT NULL,
  name text,
  subscription text NOT NULL DEFAULT 'none'
    CHECK (subscription IN ('none', 'to', 'from', 'both')),
  ask_out boolean NOT NULL DEFAULT false,
  preapproved boolean NOT NULL DEFAULT false,
  in_roster boolean NOT NULL DEFAULT false,
  version bigint NOT NULL CHECK (version >= 0),
  removed boolean NOT NULL DEFAULT false,
  PRIMARY KEY (domain, username, contact),
  FOREIGN KEY (domain, username) REFERENCES accounts (domain, username) ON DELETE CASCADE,
  CHECK (NOT removed OR (subscription = 'none' AND NOT ask_out AND NOT preapproved
                         AND NOT in_roster AND name IS NULL))
);
CREATE INDEX roster_items_version ON roster_items (domain, username, version);

CREATE TABLE roster_groups (
  domain text NOT NULL,
  username text NOT NULL,
  contact text NOT NULL,
  grp text NOT NULL,
  PRIMARY KEY (domain, username, contact, grp),
  FOREIGN KEY (domain, username, contact) REFERENCES roster_items (domain, username, contact)
    ON DELETE CASCADE
);

-- Inbound subscription requests awaiting the user's answer ("pending in"), with the
-- subscribe presence as received, redelivered when the user comes online.
CREATE TABLE subscription_requests (
  domain text NOT NULL,
  username text NOT NULL,
  contact text NOT NULL,
  stanza text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (domain, username, contact),
  FOREIGN KEY (domain, username) REFERENCES accounts (domain, username) ON DELETE CASCADE
);
CREATE INDEX subscription_requests_received
  ON subscription_requests (domain, username, received_at);

-- The user's last unavailable presence, for probes while offline (RFC 6121 4.3.2).
CREATE TABLE last_presence (
  domain text NOT NULL,
  username text NOT NULL,
  stanza text,
  status text,
  logout_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (domain, username),
  FOREIGN KEY (domain, username) REFERENCES accounts (domain, username) ON DELETE CASCADE
);
