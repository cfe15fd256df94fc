"""The OpenFaaS python3-http template's entry point, as the seed's functions ran under it.

Same shape as `template/python3-http/index.py` of openfaas/python-flask-template: a Flask app
with one catch-all route that wraps the request in an `Event`, calls `function.handler.handle`
and shapes its dict answer; waitress serves it on port 5000 (of-watchdog's `upstream_url`).
Used only by bench/coldstart.py to time the seed's stack behind the real of-watchdog.
"""
import os

from flask import Flask, jsonify, request
from waitress import serve

from function import handler

app = Flask(__name__)


class Event:
    def __init__(self):
        self.body = request.get_data()
        self.headers = request.headers
        self.method = request.method
        self.query = request.args
        self.path = request.path


class Context:
    def __init__(self):
        self.hostname = os.getenv("HOSTNAME", "localhost")


def format_response(resp):
    if resp is None:
        return ("", 200)
    if isinstance(resp, dict):
        body = resp.get("body", "")
        if isinstance(body, dict):
            body = jsonify(body)
        return (body, resp.get("statusCode", 200), list(resp.get("headers", {}).items()))
    return resp


@app.route("/", defaults={"path": ""}, methods=["GET", "PUT", "POST", "PATCH", "DELETE"])
@app.route("/<path:path>", methods=["GET", "PUT", "POST", "PATCH", "DELETE"])
def call_handler(path):
    return format_response(handler.handle(Event(), Context()))


if __name__ == "__main__":
    serve(app, host="127.0.0.1", port=int(os.getenv("PYTHON_HTTP_PORT", "5000")))
