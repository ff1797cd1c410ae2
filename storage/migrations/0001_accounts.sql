-- Accounts and their SCRAM credentials (RFC 5802 / RFC 7677). Passwords are never
-- stored: only what a server needs to verify a SCRAM exchange, one row per hash.
-- Every row carries its domain: virtual hosts share these tables.

CREATE TABLE accounts (
  domain text NOT NULL,
  username text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (domain, username)
);

CREATE TABLE scram_credentials (
  domain text NOT NULL,
  username text NOT NULL,
  hash text NOT NULL CHECK (hash IN ('SHA-1', 'SHA-256', 'SHA-512')),
  salt bytea NOT NULL,
  iterations integer NOT NULL CHECK (iterations > 0),
  stored_key bytea NOT NULL,
  server_key bytea NOT NULL,
  PRIMARY KEY (domain, username, hash),
  FOREIGN KEY (domain, username) REFERENCES accounts (domain, username) ON DELETE CASCADE
);
