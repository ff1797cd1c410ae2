#!/usr/bin/env python3
"""Embeds Herald's schema migrations into a C++ source file at build time.

Each NNNN_name.sql file becomes a storage::Migration {version, name, sql, checksum}
so that the server and heraldctl carry exactly the migrations they were built with,
and the checksum (SHA-256 of the SQL) lets a database tell which build migrated it.

Usage: embed.py --output OUT.cpp [--function NAME] [--check-dir DIR] FILE.sql...
       embed.py --self-test

The build fails here, rather than at migration time, on: a file name that is not
NNNN_name.sql, duplicate or missing versions (they must run 1, 2, 3, ...), empty or
non-UTF-8 SQL, transaction control (each migration already runs in a transaction of
its own, together with its herald_schema row), CONCURRENTLY (cannot run inside a
transaction), and .sql files in --check-dir that were not passed (i.e. not listed in
storage/meson.build).
"""

import argparse
import hashlib
import os
import re
import sys

NAME_RE = re.compile(r"^(\d{4})_([a-z0-9]+(?:_[a-z0-9]+)*)\.sql$")
# Matches the SQL spellings of transaction control as whole statements.
TRANSACTION_RE = re.compile(
    r"(?:^|;)\s*(begin|commit|rollback|abort|end|start\s+transaction|savepoint|release)"
    r"(?:\s+(?:work|transaction))?\s*(?:;|$)",
    re.IGNORECASE,
)
CONCURRENTLY_RE = re.compile(r"\bconcurrently\b", re.IGNORECASE)


class EmbedError(Exception):
    pass


def parse_name(filename):
    """(version, name) from 'NNNN_name.sql'; EmbedError otherwise."""
    match = NAME_RE.match(filename)
    if not match:
        raise EmbedError(
            f"{filename}: migration files are named NNNN_name.sql "
            "(four digits, then lowercase letters, digits and single underscores)")
    return int(match.group(1)), match.group(2)


def code_only(sql):
    """The SQL without comments, string literals and dollar-quoted bodies, so checks
    on statements do not trip over function bodies or prose."""
    sql = re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*|)\$.*?\$\1\$", " ", sql, flags=re.DOTALL)
    sql = re.sub(r"'(?:[^']|'')*'", "''", sql)
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.DOTALL)
    sql = re.sub(r"--[^\n]*", " ", sql)
    return sql


def check_sql(filename, sql):
    if not sql.strip():
        raise EmbedError(f"{filename}: is empty")
    code = code_only(sql)
    match = TRANSACTION_RE.search(code)
    if match:
        raise EmbedError(
            f"{filename}: contains '{match.group(1).upper()}': each migration already runs "
            "in its own transaction; remove transaction control")
    if CONCURRENTLY_RE.search(code):
        raise EmbedError(
            f"{filename}: CONCURRENTLY cannot run inside a transaction; "
            "migrations run in one transaction each")


def load(paths):
    """Reads, checks and orders migrations: list of (version, name, sql, checksum)."""
    migrations = []
    seen = {}
    for path in paths:
        filename = os.path.basename(path)
        version, name = parse_name(filename)
        if version in seen:
            raise EmbedError(f"{filename}: version {version} is also used by {seen[version]}")
        seen[version] = filename
        with open(path, "rb") as f:
            raw = f.read()
        try:
            sql = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise EmbedError(f"{filename}: is not UTF-8 ({e})") from None
        # Checksums must not depend on how git checked the file out.
        sql = sql.replace("\r\n", "\n")
        check_sql(filename, sql)
        checksum = hashlib.sha256(sql.encode("utf-8")).hexdigest()
        migrations.append((version, name, sql, checksum))
    migrations.sort()
    for expected, (version, name, _, _) in enumerate(migrations, start=1):
        if version != expected:
            raise EmbedError(
                f"{version:04d}_{name}.sql: expected version {expected:04d}: "
                "versions start at 0001 and have no gaps")
    return migrations


def check_dir(directory, paths):
    given = {os.path.basename(p) for p in paths}
    for filename in sorted(os.listdir(directory)):
        if filename.endswith(".sql") and filename not in given:
            raise EmbedError(
                f"{filename}: is in {directory} but not listed in storage/meson.build; "
                "add it there")


def cpp_string(text):
    """A C++ string literal, one source line per SQL line. Octal escapes (always three
    digits) cannot run into the next character the way hex escapes can."""
    data = text.encode("utf-8")
    if not data:
        return '""'
    lines = []
    current = []
    for byte in data:
        ch = chr(byte)
        if ch == "\\":
            current.append("\\\\")
        elif ch == '"':
            current.append('\\"')
        elif ch == "\n":
            current.append("\\n")
        elif ch == "\t":
            current.append("\\t")
        elif ch == "?":
            current.append("\\?")  # no trigraphs in C++17, but harmless and safe
        elif 0x20 <= byte < 0x7F:
            current.append(ch)
        else:
            current.append(f"\\{byte:03o}")
        if byte == 0x0A:
            lines.append("".join(current))
            current = []
    if current:
        lines.append("".join(current))
    return "\n    ".join(f'"{line}"' for line in lines)


def render(migrations, function):
    out = [
        "// Generated by storage/migrations/embed.py. Do not edit: change the .sql files.",
        '#include "storage/schema.hpp"',
        "",
        "namespace herald::storage {",
        "",
        "namespace {",
        "",
    ]
    for version, name, sql, _ in migrations:
        out.append(f"constexpr char sql_{version:04d}[] =\n    {cpp_string(sql)};")
        out.append("")
    if migrations:
        out.append("constexpr Migration list[] = {")
        for version, name, _, checksum in migrations:
            out.append(
                f'    {{{version}, "{name}", {{sql_{version:04d}, sizeof sql_{version:04d} - 1}}, '
                f'"{checksum}"}},')
        out.append("};")
    out += ["", "}  // namespace", ""]
    out.append(f"std::span<const Migration> {function}() {{")
    out.append("  return list;" if migrations else "  return {};")
    out += ["}", "", "}  // namespace herald::storage", ""]
    return "\n".join(out)


def self_test():
    import tempfile

    assert parse_name("0001_accounts.sql") == (1, "accounts")
    assert parse_name("0042_roster_items.sql") == (42, "roster_items")
    for bad in ["1_accounts.sql", "0001-accounts.sql", "0001_.sql", "0001_Accounts.sql",
                "0001_a__b.sql", "0001_accounts.SQL", "00001_x.sql"]:
        try:
            parse_name(bad)
        except EmbedError:
            continue
        raise AssertionError(f"accepted {bad}")

    for bad_sql in ["BEGIN;\nCREATE TABLE t (x int);\nCOMMIT;", "create table t (x int); commit",
                    "START TRANSACTION;", "CREATE INDEX CONCURRENTLY i ON t (x);", "  \n"]:
        try:
            check_sql("x.sql", bad_sql)
        except EmbedError:
            continue
        raise AssertionError(f"accepted {bad_sql!r}")
    # Function bodies, comments and strings may say BEGIN/END/COMMIT.
    check_sql("x.sql", "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n"
                       "  PERFORM 1;\nEND;\n$$;\n-- then COMMIT;\nSELECT 'COMMIT;';")
    check_sql("x.sql", "CREATE TABLE t (begin_at timestamptz, ended boolean);")

    literal = cpp_string('a"b\\c?\x01\n\u00e9\tx')
    assert literal == '"a\\"b\\\\c\\?\\001\\n"\n    "\\303\\251\\tx"', literal

    with tempfile.TemporaryDirectory() as d:
        def write(name, text):
            with open(os.path.join(d, name), "w", encoding="utf-8", newline="") as f:
                f.write(text)
            return os.path.join(d, name)
        a = write("0002_b.sql", "SELECT 2;\r\n")
        b = write("0001_a.sql", "SELECT 1;\n")
        loaded = load([a, b])
        assert [m[0] for m in loaded] == [1, 2]
        assert loaded[1][2] == "SELECT 2;\n"  # CRLF normalised
        assert loaded[1][3] == hashlib.sha256(b"SELECT 2;\n").hexdigest()
        c = write("0004_d.sql", "SELECT 4;")
        try:
            load([a, b, c])
            raise AssertionError("accepted a gap")
        except EmbedError:
            pass
        try:
            check_dir(d, [a, b])
            raise AssertionError("missed an unlisted file")
        except EmbedError:
            pass
        write("0001_dup.sql", "SELECT 1;")
        try:
            load([b, os.path.join(d, "0001_dup.sql")])
            raise AssertionError("accepted a duplicate version")
        except EmbedError:
            pass
    print("embed.py self-test: ok")


def main():
    parser = argparse.ArgumentParser(description="Embed Herald migrations into C++.")
    parser.add_argument("--output")
    parser.add_argument("--function", default="migrations")
    parser.add_argument("--check-dir")
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    if args.self_test:
        self_test()
        return 0
    if not args.output:
        parser.error("--output is required")
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", args.function):
        parser.error("--function must be a C++ identifier")
    try:
        if args.check_dir:
            check_dir(args.check_dir, args.files)
        text = render(load(args.files), args.function)
    except EmbedError as e:
        print(f"embed.py: error: {e}", file=sys.stderr)
        return 1
    # Rewrite only on change, so an unrelated reconfigure does not recompile.
    try:
        with open(args.output, encoding="utf-8") as f:
            if f.read() == text:
                return 0
    except FileNotFoundError:
        pass
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
