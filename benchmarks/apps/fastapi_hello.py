"""The bare FastAPI baseline: one route, no middleware, no settings, no logging setup."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
