"""The seed's streaming handler, reading the same chunks legato serves from the same SQLite
file (the seed read them from MongoDB): `GET /<music_id>/<chunk_name>` answers the bytes."""
import os
import sqlite3


def handle(event, context):
    parts = event.path.strip("/").split("/")
    if len(parts) != 2:
        return {"statusCode": 404, "body": "not found"}
    conn = sqlite3.connect(os.environ["BENCH_SQLITE"])
    try:
        row = conn.execute(
            "SELECT bytes FROM chunks WHERE track_id = ? AND name = ?", (parts[0], parts[1])
        ).fetchone()
    finally:
        conn.close()
    if row is None:
        return {"statusCode": 404, "body": "not found"}
    return (bytes(row[0]), 200, [("Content-Type", "application/octet-stream")])
