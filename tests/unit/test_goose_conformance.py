"""goose's own reading of its migrations, one row a behaviour: pressly/goose v3.27.3 (commit 520411a1).

Each row is a file's text and what goose makes of it: the Up statements it sends one by one, whether in a
transaction, or that it refuses the file. The inputs are written for these tests, modelled on the cases of
goose's internal/sqlparser/parser_test.go and testdata/; each row names the goose source it follows
("parser.go:N" is a line of internal/sqlparser/parser.go at that commit). The expectations were checked
against goose's own parser.go and NumericComponent, compiled from that commit.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sidecar import goose


@dataclass(frozen=True)
class Runs:
    statements: tuple[str, ...]
    transactional: bool = True
    envsub: bool = False


@dataclass(frozen=True)
class Refused:
    because: str  # a part of the message


FUNCTION = """CREATE FUNCTION stamp() RETURNS trigger AS $stamp$
    BEGIN
        -- the name is required
        IF NEW.name IS NULL THEN
            RAISE EXCEPTION 'name cannot be null';
        END IF;

        NEW.changed := now();
        RETURN NEW;
    END;
$stamp$ LANGUAGE plpgsql;"""

TEXT = [
    # --- sections ---
    pytest.param("-- +goose Up\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n\n-- +goose Down\nDROP TABLE t;\n",
                 Runs(("CREATE TABLE t (id int);", "INSERT INTO t VALUES (1);")),
                 id="up and down: the Down statements are not kept"),  # parser.go:235-240 drops them going up
    pytest.param("-- +goose Up\nCREATE TABLE t (id int);\n", Runs(("CREATE TABLE t (id int);",)),
                 id="only an Up section"),  # parser.go:275-286: the end of the file in gooseUp is fine
    pytest.param("-- a note\n\n   \n-- +goose Up\nSELECT 1;\n", Runs(("SELECT 1;",)),
                 id="comments and blank lines before Up"),  # parser.go:121 (blank), 200-205 (comments)
    pytest.param("-- +goose Up\n-- only a comment", Runs(()),
                 id="an Up section without a statement"),  # parser_test.go emptySQL: 0 statements
    pytest.param("\n\n-- c\n-- +goose Up\n\n-- c\n-- +goose Down\n\n", Runs(()),
                 id="empty Up and Down sections"),  # parser_test.go emptySQL2
    pytest.param("-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2\n", Runs(("SELECT 1;",)),
                 id="a Down statement without its semicolon: going up it is never kept"),  # parser.go:230-233;
    # migration.go:223 parses only the direction it runs (goose.NewProvider would parse down too and refuse it)
    pytest.param("-- +goose Down\nDROP TABLE t;\n", Refused("before `-- +goose Up`"),
                 id="Down before Up"),  # parser.go:155-156 (parser_test.go downFirst)
    pytest.param("-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n-- +goose Up\nSELECT 3;\n",
                 Refused("a second `-- +goose Up`"), id="two Up sections"),  # parser.go:137-141 (multiUpDown)
    pytest.param("-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n-- +goose Down\nSELECT 3;\n",
                 Refused("a second `-- +goose Down`"), id="two Down sections"),  # parser.go:147, 155-156
    pytest.param("CREATE TABLE t (id int);\n", Refused("a statement before `-- +goose Up`"),
                 id="no annotation at all"),  # parser.go:241-242 (parser_test.go noUpDownAnnotations)
    pytest.param("SELECT 1;\n-- +goose Up\nSELECT 2;\n", Refused("a statement before `-- +goose Up`"),
                 id="a statement before Up"),  # parser.go:241-242: unexpected state 0
    pytest.param("-- only comments\n\n-- more\n", Refused("no `-- +goose Up` line"),
                 id="missing Up: comments only"),  # parser.go:276-277
    pytest.param("", Refused("no `-- +goose Up` line"), id="an empty file"),  # parser.go:276-277
    pytest.param("\ufeff-- +goose Up\nSELECT 1;\n", Refused("a statement before `-- +goose Up`"),
                 id="a byte-order mark hides the Up line"),  # parser.go:127: TrimSpace keeps U+FEFF, no `--` first
    # --- statement ends: a line whose last word ends with `;` ---
    pytest.param("-- +goose Up\nCREATE TABLE post (\n    id int NOT NULL,\n    PRIMARY KEY(id)\n);     -- 1st\n\n"
                 "-- between\nSELECT 2;      -- 2nd\nSELECT 3; SELECT 3; -- 3rd\nSELECT 4;\n",
                 Runs(("CREATE TABLE post (\n    id int NOT NULL,\n    PRIMARY KEY(id)\n);     -- 1st",
                       "SELECT 2;      -- 2nd", "SELECT 3; SELECT 3; -- 3rd", "SELECT 4;")),
                 id="statements across lines, a comment after the semicolon, two on one line"),
    # parser.go:246-251, 375-394 (parser_test.go multilineSQL: 4 up statements)
    pytest.param("-- +goose Up\nSELECT 1;-- glued\nSELECT 2;\n", Runs(("SELECT 1;-- glued\nSELECT 2;",)),
                 id="a comment glued to the semicolon hides it"),  # parser.go:385-393: words split at spaces
    pytest.param("-- +goose Up\nSELECT 1 -- not yet;\n, 2   ;\n", Runs(("SELECT 1 -- not yet;\n, 2   ;",)),
                 id="a semicolon in a comment does not end it; one after spaces does"),  # parser_test.go TestSemicolons
    pytest.param("-- +goose Up\nINSERT INTO t VALUES ('a;\nb');\n", Runs(("INSERT INTO t VALUES ('a;", "b');")),
                 id="goose does not lex: a semicolon ending a line inside a string ends the statement"),
    # parser.go:247: endsWithSemicolon looks at the line only
    pytest.param("-- +goose Up\nSELECT 1;\u00a0\nSELECT 2;\u3000\n", Runs(("SELECT 1;", "SELECT 2;")),
                 id="Unicode white space after the semicolon, trimmed"),  # parser.go:370 TrimSpace, 383 ScanWords
    pytest.param("-- +goose Up\nSELECT 1;\x1c\n", Refused("still open at the end of the file"),
                 id="U+001C is no white space for goose"),  # unicode.IsSpace (Python's isspace says it is)
    pytest.param("\x1c\n-- +goose Up\nSELECT 1;\n", Refused("a statement before `-- +goose Up`"),
                 id="a line of U+001C is no blank line"),  # parser.go:121 TrimSpace; unicode.IsSpace
    pytest.param("-- +goose Up\nSELECT * FROM foo;\nSELECT * FROM bar\n-- +goose Down\nSELECT * FROM baz;\n",
                 Refused("while the statement from line 3 is still open"),
                 id="a statement without its semicolon before Down"),  # parser.go:148-153 (testdata invalid/up/a.sql)
    pytest.param("-- +goose Up\nSELECT * FROM bar\n", Refused("the statement from line 2 is still open"),
                 id="a statement without its semicolon at the end"),  # parser.go:282-284 (invalid/up/d.sql)
    pytest.param("-- +goose Up\n   \n-- +goose Down\n", Runs(()),
                 id="white space alone is no open statement"),  # parser.go:151, 282: TrimSpace of the buffer
    # --- comments and blank lines ---
    pytest.param("-- +goose Up\nCREATE TABLE t (\n    id int\n-- inside\n);\n-- dangling\n\n-- another\nSELECT 1;\n\n",
                 Runs(("CREATE TABLE t (\n    id int\n-- inside\n);", "SELECT 1;")),
                 id="comments inside a statement kept, between statements dropped"),  # parser.go:197-206 (test05)
    pytest.param("-- +goose Up\nINSERT INTO t VALUES ('\n\nfirst\n\nsecond');\n",
                 Runs(("INSERT INTO t VALUES ('\n\nfirst\n\nsecond');",)),
                 id="blank lines inside a statement kept"),  # parser.go:200: only an empty buffer skips (test06)
    pytest.param("-- +goose Up\n   \n-- kept\nSELECT 1;\n", Runs(("-- kept\nSELECT 1;",)),
                 id="a line of spaces opens a statement, so the comment after it is kept"),
    # parser.go:202: `line == ""`, not TrimSpace
    pytest.param("-- +goose Up\n/* a note */\nSELECT 1;\n", Runs(("/* a note */\nSELECT 1;",)),
                 id="a block comment is statement text"),  # parser.go:202: only `--` lines are comments
    pytest.param("/* a note */\n-- +goose Up\nSELECT 1;\n", Refused("a statement before `-- +goose Up`"),
                 id="a block comment before Up"),  # parser.go:241-242
    # --- StatementBegin / StatementEnd ---
    pytest.param(f"-- +goose Up\nCREATE TABLE emp (name text, changed timestamp);\n\n-- +goose StatementBegin\n"
                 f"-- dropped: before the statement\n{FUNCTION}\n\n-- kept: inside it\n-- +goose StatementEnd\n\n"
                 "CREATE TRIGGER stamp BEFORE INSERT ON emp\n    FOR EACH ROW EXECUTE FUNCTION stamp();\n"
                 "\n-- +goose Down\n-- +goose StatementBegin\nDROP FUNCTION stamp();\n-- +goose StatementEnd\n",
                 Runs(("CREATE TABLE emp (name text, changed timestamp);", f"{FUNCTION}\n\n-- kept: inside it",
                       "CREATE TRIGGER stamp BEFORE INSERT ON emp\n    FOR EACH ROW EXECUTE FUNCTION stamp();")),
                 id="a dollar-quoted plpgsql function with semicolons in a block"),
    # parser.go:160-179, 258-262 (testdata valid-up/test01, test06)
    pytest.param("-- +goose Up\n-- +goose StatementBegin\nCREATE TABLE a (id int);\n\nCREATE TABLE b (id int);\n"
                 "-- +goose StatementEnd\n", Runs(("CREATE TABLE a (id int);\n\nCREATE TABLE b (id int);",)),
                 id="a block of two statements is one query"),  # parser.go:258-262 (valid-up/test02)
    pytest.param("-- +goose Up\n-- +goose StatementBegin\ncreate table t (id int);\nupdate t set id = 1\n"
                 "-- +goose StatementEnd\n", Runs(("create table t (id int);\nupdate t set id = 1",)),
                 id="a block needs no semicolon"),  # parser.go:258-262 (valid-up/test09)
    pytest.param("-- +goose Up\nSELECT 1;\n-- +goose StatementBegin\n-- +goose StatementEnd\nSELECT 2;\nSELECT 3;\n",
                 Runs(("SELECT 1;", "SELECT 3;")),
                 id="an empty block: goose sends an empty query and drops the next line"),
    # parser.go:171-179 (no `continue`), 200-205 keep gooseStatementEndUp; 208-209 drops the line; 258-262
    pytest.param("-- +goose Up\nSELECT 1\n-- +goose StatementBegin\n, 2;\n-- +goose StatementEnd\n",
                 Runs(("SELECT 1\n, 2;",)), id="a block begun inside an open statement joins it"),  # parser.go:162-163
    pytest.param("-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n"
                 "  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql;\n\n-- +goose Down\nDROP FUNCTION f();\n",
                 Refused("inside the block begun on line 2"),
                 id="Down inside an unended block"),  # parser.go:155-156 (parser_test.go statementBeginNoStatementEnd)
    pytest.param("-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n",
                 Refused("on line 2 has no `-- +goose StatementEnd`"),
                 id="an unended StatementBegin"),  # parser.go:278-279
    pytest.param("-- +goose Up\nSELECT 1;\n-- +goose Down\n-- +goose StatementBegin\nSELECT 2;\n",
                 Refused("on line 4 has no `-- +goose StatementEnd`"),
                 id="an unended StatementBegin in the Down section"),  # parser.go:278: gooseStatementBeginDown too
    pytest.param("-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementBegin\nSELECT 1;\n"
                 "-- +goose StatementEnd\n",
                 Refused("does not nest"), id="StatementBegin twice"),  # parser.go:166-167
    pytest.param("-- +goose StatementBegin\n-- +goose Up\n", Refused("StatementBegin` before `-- +goose Up`"),
                 id="StatementBegin before Up"),  # parser.go:166-167
    pytest.param("-- +goose Up\nSELECT 1;\n-- +goose StatementEnd\n", Refused("without a `-- +goose StatementBegin`"),
                 id="StatementEnd without StatementBegin"),  # parser.go:177-178
    pytest.param("-- +goose Up\n-- +goose StatementBegin\nCOPY t (id, name) FROM stdin;\n1\ta\n\\.\n"
                 "-- +goose StatementEnd\n", Runs(("COPY t (id, name) FROM stdin;\n1\ta\n\\.",)),
                 id="COPY data in a block is sent as part of the query"),  # parser_test.go copyFromStdin: 1 statement
    # --- annotations ---
    pytest.param("--+goose up\nSELECT 1;\n-- +goose   DOWN \t\nSELECT 2;\n", Runs(("SELECT 1;",)),
                 id="annotations without a space, with extra spaces and in any case"),  # parser.go:326-348
    pytest.param("-- +gooseUp\nSELECT 1;\n", Runs(("SELECT 1;",)), id="no space after +goose"),  # parser.go:329
    pytest.param("-- +goose Up\n-- +goose statementbegin\nSELECT 1;\n-- +goose STATEMENTEND\n", Runs(("SELECT 1;",)),
                 id="StatementBegin and StatementEnd in any case"),  # parser.go:345 strings.EqualFold
    pytest.param("-- +goose Up\n-- +goose \u017ftatementBegin\nSELECT 1;\n-- +goose StatementEnd\n",
                 Runs(("SELECT 1;",)), id="EqualFold's simple folding: long s is s"),  # parser.go:345
    pytest.param("-- +goose Up\n-- +goose \ufb05atementBegin\nSELECT 1;\n-- +goose StatementEnd\n",
                 Refused("knows only"), id="but the st ligature is no st"),  # parser.go:345: rune by rune
    pytest.param("-- +GOOSE Up\nSELECT 1;\n", Refused("a statement before `-- +goose Up`"),
                 id="+GOOSE is no annotation, only a comment"),  # parser.go:127: Contains(line, "+goose")
    pytest.param("  -- +goose Up\nSELECT 1;\n", Refused("indented comment"),
                 id="an indented annotation"),  # parser.go:321-322
    pytest.param("-- +goose Up\nSELECT 1;\n\t-- +goose Down\n", Refused("indented comment"),
                 id="a tab-indented annotation"),  # parser.go:321-322
    pytest.param("-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$\n"
                 "  -- see the +goose docs\n  SELECT 1\n$$ LANGUAGE sql;\n-- +goose StatementEnd\n",
                 Refused("indented comment"), id="a comment in a function body that mentions +goose"),  # parser.go:127
    pytest.param("-- +goose Up\n-- the +goose way\nSELECT 1;\n", Refused("knows only"),
                 id="a comment that mentions +goose"),  # parser.go:127, 350
    pytest.param("-- +goose +goose Up\nSELECT 1;\n", Refused("`+goose` twice"), id="+goose twice"),  # parser.go:331-333
    pytest.param("-- +goose\nSELECT 1;\n", Refused("without a name"), id="an empty annotation"),  # parser.go:338-340
    pytest.param("-- +goose Upp\nSELECT 1;\n", Refused("knows only"), id="an unknown annotation"),  # parser.go:350
    pytest.param("-- +goose Up\nSELECT 1;\n-- +goose NO  TRANSACTION\n", Refused("knows only"),
                 id="two spaces inside NO TRANSACTION"),  # parser.go:342-350: the inside is compared as it is
    pytest.param("-- +goose Up -- creates t\nCREATE TABLE t (id int);\n", Refused("knows only"),
                 id="a comment after the annotation"),  # parser.go:326: every `--` goes, "Up  creates t" is left
    pytest.param("--- +goose Up\nSELECT 1;\n", Refused("knows only"),
                 id="three dashes leave one"),  # parser.go:326: ReplaceAll("---", "--", "") leaves "-"
    # --- NO TRANSACTION ---
    pytest.param("-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (id);\n\n"
                 "-- +goose Down\nDROP INDEX i;\n",
                 Runs(("CREATE INDEX CONCURRENTLY i ON t (id);",), transactional=False),
                 id="NO TRANSACTION before Up"),  # parser.go:181-183 (testdata valid-txn/00003)
    pytest.param("-- +goose Up\nSELECT 1;\n-- +goose Down\n-- +goose no transaction\nSELECT 2;\n",
                 Runs(("SELECT 1;",), transactional=False),
                 id="NO TRANSACTION in the Down section, in lower case"),  # parser.go:181-183: in any state
    pytest.param("-- +goose Up\nSELECT\n-- +goose NO TRANSACTION\n1;\n", Runs(("SELECT\n1;",), transactional=False),
                 id="an annotation inside a statement is left out of it"),  # parser.go:181-183 `continue`
    # --- ENVSUB ---
    pytest.param("-- +goose ENVSUB ON\n-- +goose Up\nCREATE TABLE ${REGION}post (id int);\n",
                 Runs(("CREATE TABLE ${REGION}post (id int);",), envsub=True),
                 id="ENVSUB ON over a line with $"),  # parser.go:185-187, 211-217 (testdata envsub/test01)
    pytest.param("-- +goose Up\n-- +goose ENVSUB ON\nCREATE TABLE t (id int);\n-- +goose ENVSUB OFF\n"
                 "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql;\n",
                 Runs(("CREATE TABLE t (id int);", "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql;")),
                 id="ENVSUB ON over lines without $ only"),  # parser.go:189-191: OFF ends it; no `$`, nothing changes
    pytest.param("-- +goose Up\n-- +goose ENVSUB ON\n-- costs $5\nSELECT 1;\n", Runs(("SELECT 1;",)),
                 id="ENVSUB ON over a dropped comment with $"),  # parser.go:200-205 skip it before 211
    pytest.param("-- +goose Up\nSELECT 1;\n-- +goose Down\n-- +goose ENVSUB ON\nDROP TABLE ${T};\n",
                 Runs(("SELECT 1;",), envsub=True),
                 id="ENVSUB ON over a Down line with $"),  # parser.go:211-217 run before the direction test at 235
    pytest.param("-- +goose Up\n-- +goose ENVSUB\nSELECT 1;\n", Refused("knows only"),
                 id="ENVSUB without ON or OFF"),  # parser.go:350
    # --- line ends ---
    pytest.param("-- +goose Up\r\nCREATE FUNCTION f() RETURNS int AS $$\r\nBEGIN\r\n  RETURN 1;\r\nEND;\r\n"
                 "$$ LANGUAGE plpgsql;\r\n-- +goose Down\r\nDROP FUNCTION f();\r\n",
                 Runs(("CREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;",
                       "END;", "$$ LANGUAGE plpgsql;")),
                 id="CRLF, and a function outside a block split at its semicolons"),  # bufio.ScanLines drops \r
    pytest.param("-- +goose Up\r\nSELECT 1;\r\r\n", Runs(("SELECT 1;",)),
                 id="one \\r is dropped, another is white space"),  # bufio.ScanLines dropCR, then TrimSpace
    pytest.param("-- +goose Up\nSELECT '" + "x" * (4 * 1024 * 1024 - 11) + "';\n",
                 Runs(("SELECT '" + "x" * (4 * 1024 * 1024 - 11) + "';",)), id="a line just under 4 MiB"),
    pytest.param("-- +goose Up\nSELECT '" + "x" * (4 * 1024 * 1024 - 10) + "';\n", Refused("line 2 is 4 MiB"),
                 id="a line of 4 MiB"),  # parser.go:84, 108-109: the scanner's buffer; 270-271
]


@pytest.mark.parametrize(("text", "expected"), TEXT)
def test_goose_reads_the_file_as_goose_does(text: str, expected: Runs | Refused) -> None:
    parsed = goose.parse(text)
    if isinstance(expected, Refused):
        assert isinstance(parsed, str), parsed
        assert expected.because in parsed
        return
    assert not isinstance(parsed, str), parsed
    assert (parsed.statements, parsed.transactional, parsed.envsub) == (
        expected.statements, expected.transactional, expected.envsub)
    # `up` holds each statement on the lines it came from, with any annotation goose left out of it a blank
    # line there, and nothing else
    source, lines = text.split("\n"), parsed.up.split("\n")
    assert len(lines) == len(source)
    placed: set[int] = set()
    for statement, start in zip(parsed.statements, parsed.lines, strict=True):
        span: list[int] = []
        i = start - 1
        while len([j for j in span if not _annotation(source[j])]) <= statement.count("\n"):
            span.append(i)
            i += 1
        assert "\n".join(lines[j] for j in span if not _annotation(source[j])) == statement
        placed.update(j for j in span if not _annotation(source[j]))
    assert not any(line for j, line in enumerate(lines) if j not in placed)


def _annotation(line: str) -> bool:
    return line.strip().startswith("--") and "+goose" in line


def test_up_blanks_the_down_section_and_annotations_and_keeps_line_numbers() -> None:
    parsed = goose.parse("-- +goose NO TRANSACTION\n-- +goose Up\r\n-- a\nCREATE TABLE t (id int);\r\n"
                         "\nSELECT 1;\n-- +goose Down\nDROP TABLE t;\n")
    assert not isinstance(parsed, str)
    assert parsed.up == "\n\n\nCREATE TABLE t (id int);\n\nSELECT 1;\n\n\n"
    assert parsed.lines == (4, 6)


def test_an_annotation_inside_a_statement_is_a_blank_line_in_up() -> None:
    parsed = goose.parse("-- +goose Up\nSELECT\n-- +goose NO TRANSACTION\n1;\n")
    assert not isinstance(parsed, str)
    assert parsed.statements == ("SELECT\n1;",)
    assert parsed.up == "\nSELECT\n\n1;\n"


def test_a_refusal_names_the_line() -> None:
    assert goose.parse("-- +goose Up\nSELECT 1;\n  -- +goose Down\n").startswith("line 3: ")  # type: ignore[union-attr]


NAMES = [
    # migration.go:363-380 NumericComponent: the digits before the first `_`, strconv.ParseInt, >= 1
    ("00001_create_users.sql", "sql", "1"),
    ("20240101120000_add_posts.sql", "sql", "20240101120000"),
    ("1_.sql", "sql", "1"),  # nothing after the `_` is needed
    ("1_a.b.sql", "sql", "1"),  # filepath.Ext: the last dot's
    ("+5_plus.sql", "sql", "5"),  # ParseInt takes a `+`
    ("9223372036854775807_max.sql", "sql", "9223372036854775807"),  # int64's largest
    ("0009223372036854775807_max.sql", "sql", "9223372036854775807"),  # leading zeros do not count against it
    ("003_seed.go", "go", "3"),  # a Go migration (migrate.go:311-339)
    ("3_seed_test.go", "", ""),  # migrate.go:330-331: a Go test file is skipped
    ("3_test.go", "", ""),  # its `_` is also the version's
    ("helpers.go", "", ""),  # migrate.go:326-328: a .go file without a version is skipped
    ("0_x.go", "", ""),  # version 0: skipped too
    ("1_x.SQL", "", ""),  # migrate.go:143 globs *.sql: case matters
    ("1_x.sql.bak", "", ""),
    ("README.md", "", ""),
    # a .sql file whose name does not parse: migrate.go:147-151 refuses the folder
    ("0_zero.sql", "", ""),
    ("00000_zero.sql", "", ""),
    ("-1_negative.sql", "", ""),
    ("9223372036854775808_over.sql", "", ""),
    ("create_users.sql", "", ""),
    ("1.sql", "", ""),
    ("1-create.sql", "", ""),
    ("V1__flyway.sql", "", ""),
    ("x1_a.sql", "", ""),
    (".sql", "", ""),
]


@pytest.mark.parametrize(("name", "kind", "version"), NAMES)
def test_file_names_as_goose_reads_them(name: str, kind: str, version: str) -> None:
    assert goose.classify(name) == kind
    match = goose.NAME.match(name)
    assert (match["version"] if match else "") == version
    assert bool(goose.name_problem(name)) == (name.endswith(".sql") and not kind)


@pytest.mark.parametrize(("name", "why"), [
    ("0_zero.sql", "its version is 0"),
    ("-1_negative.sql", "its version is -1"),
    ("9223372036854775808_over.sql", "over goose's largest"),
    ("create_users.sql", "'create', before its first `_`, is not a version number"),
    ("1.sql", "no `_`"),
])
def test_a_name_goose_refuses_says_why(name: str, why: str) -> None:
    assert why in goose.name_problem(name)


def test_the_version_range_is_exactly_goose_s_int64() -> None:
    for number in [1, 9, 10, 99, 10**17, 10**18 - 1, 10**18, 9 * 10**18, goose.MAX_VERSION - 1, goose.MAX_VERSION,
                   goose.MAX_VERSION + 1, 9223372036854775799, 9223372036854775817, 9300000000000000000, 10**19,
                   int("9" * 19)]:
        assert (goose.classify(f"{number}_x.sql") == "sql") == (number <= goose.MAX_VERSION), number


# internal/dialects/postgres.go CreateTable and InsertVersion (the `%s` is the table name, written in as given)
GOOSE_CREATE = """CREATE TABLE goose_db_version (
		id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
		version_id bigint NOT NULL,
		is_applied boolean NOT NULL,
		tstamp timestamp NOT NULL DEFAULT now()
	)"""


def test_the_version_table_sql_is_goose_s() -> None:
    # migrate.go:255-269 createVersionTable: the table, then version 0 (InsertVersion's $1, $2 = 0, true)
    created = goose.create_table()
    assert created == f"{GOOSE_CREATE};\nINSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true);\n"
    assert created == goose.CREATE_TABLE
    assert goose.record(20240101120000) == (
        "INSERT INTO goose_db_version (version_id, is_applied) VALUES (20240101120000, true);\n")
    assert goose.APPLIED_VERSIONS == ("SELECT DISTINCT version_id FROM goose_db_version WHERE version_id <> 0"
                                      " ORDER BY version_id")


def test_a_custom_table_name_is_written_in_as_goose_writes_it() -> None:
    assert goose.create_table("ops.Versions").startswith("CREATE TABLE ops.Versions (\n")
    assert goose.record(1, "ops.Versions") == "INSERT INTO ops.Versions (version_id, is_applied) VALUES (1, true);\n"
    assert "FROM ops.Versions " in goose.applied_versions("ops.Versions")


@pytest.mark.parametrize("table", ["", "a.b.c", "t; DROP TABLE x", '"quoted"', "1t", "t-x", "é"])
def test_a_table_name_that_would_read_differently_is_refused(table: str) -> None:
    with pytest.raises(ValueError):
        goose.create_table(table)


@pytest.mark.parametrize("version", [-1, goose.MAX_VERSION + 1])
def test_a_version_outside_int64_is_refused(version: int) -> None:
    with pytest.raises(ValueError):
        goose.record(version)
