import threading

from sconeflow.db import Database, Migrations


def test_migrations_apply_once_and_in_order(tmp_path):
    db = Database(tmp_path / "m.db")
    schema = Migrations(
        "widgets",
        [
            "CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT)",
            "ALTER TABLE widgets ADD COLUMN size INTEGER DEFAULT 0",
        ],
    )
    db.apply(schema)
    db.apply(schema)
    other = Database(tmp_path / "m.db")
    other.apply(schema)  # a second process/handle sees the schema as current
    assert other.schema_versions() == {"widgets": 2}
    with db.transaction() as conn:
        conn.execute("INSERT INTO widgets (name, size) VALUES ('a', 3)")
    assert db.query_one("SELECT size FROM widgets")["size"] == 3
    assert db.query_one("PRAGMA journal_mode")[0] == "wal"


def test_new_migration_is_applied_to_an_existing_database(tmp_path):
    Database(tmp_path / "m.db").apply(Migrations("c", ["CREATE TABLE t (a INTEGER)"]))
    db = Database(tmp_path / "m.db")
    db.apply(Migrations("c", ["CREATE TABLE t (a INTEGER)", "ALTER TABLE t ADD COLUMN b TEXT"]))
    assert [r[1] for r in db.query("PRAGMA table_info(t)")] == ["a", "b"]


def test_concurrent_writers_from_threads(tmp_path):
    db = Database(tmp_path / "m.db")
    db.apply(Migrations("n", ["CREATE TABLE n (v INTEGER)"]))

    def work():
        for i in range(50):
            with db.transaction() as conn:
                conn.execute("INSERT INTO n VALUES (?)", (i,))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.query_one("SELECT COUNT(*) FROM n")[0] == 200


def test_a_file_that_is_not_a_database_is_a_named_error(tmp_path):
    import pytest

    from sconeflow.db import DatabaseError

    path = tmp_path / "sconeflow.db"
    path.write_text("not a database, just text " * 10)
    with pytest.raises(DatabaseError, match="cannot open metadata database"):
        Database(path).connection()
