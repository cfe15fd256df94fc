"""The seed's streaming function, rebuilt for the cold-start benchmark.

The seed runs a Flask app under waitress (OpenFaaS python3-http template) that answers
`GET /<music_id>/<chunk_name>` with the chunk's bytes. Here it reads the same chunks from the
same SQLite file as `legato function streaming`, so both do the same job on the same data.
"""
import os
import sqlite3
import sys

from flask import Flask, Response
from waitress import serve

app = Flask(__name__)
DB = os.environ["BENCH_SQLITE"]


@app.route("/<music_id>/<chunk_name>")
def chunk(music_id, chunk_name):
    conn = sqlite3.connect(DB)
    try:
        row = conn.execute(
            "SELECT bytes FROM chunks WHERE track_id = ? AND name = ?", (music_id, chunk_name)
        ).fetchone()
    finally:
        conn.close()
    if row is None:
        return Response("not found", status=404)
    return Response(row[0], mimetype="application/octet-stream")


if __name__ == "__main__":
    serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=4)
