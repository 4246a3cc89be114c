"""The greeting the flask-hello test app answers with.

Served only by the sandbox's private package index: a build finds it
through PIP_INDEX_URL or not at all.
"""


def greeting():
    return "Hello from Flask, built by OpenShift S2I through Shipwright"
