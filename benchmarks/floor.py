"""The floor: the same web stack doing the least an order-sign endpoint can do
(read the body, parse the JSON, answer an empty card list)."""
from __future__ import annotations

import orjson
from flask import Flask, Response, request

app = Flask(__name__)


@app.post("/cds-services/spine-surgery-order-sign")
def order_sign():
    body = orjson.loads(request.get_data(cache=False))
    return Response(orjson.dumps({"cards": [], "systemActions": [], "n": len(body)}), mimetype="application/json")


@app.get("/cds-services")
def discovery():
    return {"services": []}
