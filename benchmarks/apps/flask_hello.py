"""The bare Flask baseline: one route, no middleware, no settings, no logging setup."""

from flask import Flask

app = Flask(__name__)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
