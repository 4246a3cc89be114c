"""A minimal Flask application for the ocbuild openshift-s2i sample.

The UBI Python S2I image runs it with gunicorn (APP_MODULE=app:app, set by the
sample Build), or with `python app.py` when gunicorn is missing.
"""
import os

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello from Flask, built by OpenShift S2I through Shipwright\n"


@app.route("/healthz")
def healthz():
    return "ok\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
