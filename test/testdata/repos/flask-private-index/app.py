"""A minimal Flask application built with the openshift-s2i strategy."""
from flask import Flask
from ocbuild_greeting import greeting

app = Flask(__name__)


@app.route("/")
def hello():
    return greeting() + "\n"
