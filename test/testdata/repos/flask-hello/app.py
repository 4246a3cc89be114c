"""A minimal Flask application built with the openshift-s2i strategy."""
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello from Flask, built by OpenShift S2I through Shipwright\n"
