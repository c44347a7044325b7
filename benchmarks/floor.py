"""The floor: the same web stack doing the least an order-sign endpoint can do (read the body, parse
the JSON, answer an empty card list), served by the very code of `spine-cds serve`.

    python -m benchmarks.floor --host 127.0.0.1 --port 8081 [--workers 2]

`spine-cds serve` is run with this app in place of the service's (cds_service.app.create_app is
swapped before `serve` imports it), so the floor gets the same gunicorn settings: asyncio ("asgi")
workers, the same worker count, BufferedWSGI reading whole bodies before a thread runs the app, the
same thread pool, keep-alive and access log. The service/floor ratio compares like with like.
"""
from __future__ import annotations

import sys

import orjson
from flask import Flask, Response, request

from cds_service.config import DEFAULTS

app = Flask(__name__)
# What `serve` reads from the app it is given (the body limit and the start-up line).
app.config["CDS"] = {"MAX_BODY_BYTES": DEFAULTS["MAX_BODY_BYTES"], "AUTH": "off (benchmark floor)"}


@app.post("/cds-services/spine-surgery-order-sign")
def order_sign():
    body = orjson.loads(request.get_data(cache=False))
    return Response(orjson.dumps({"cards": [], "systemActions": [], "n": len(body)}), mimetype="application/json")


@app.get("/cds-services")
def discovery():
    return {"services": []}


def main(argv: list[str] | None = None) -> None:
    import cds_service.app
    from cds_service import cli

    cds_service.app.create_app = lambda: app
    cli.main(["serve", *(sys.argv[1:] if argv is None else argv)], prog_name="benchmarks.floor")


if __name__ == "__main__":
    main()
