"""A small local server of Qdrant's and Chroma's query and write REST endpoints, for the RAG
cache tests and the workload benchmark (Qdrant has no server on PyPI; Chroma's pulls
hundreds of MB). It answers with the same JSON shapes as the real servers for the endpoints
it covers, searches by exact cosine similarity, and applies Qdrant ``must``/``match``
filters and Chroma equality ``where``. ``--query-ms`` makes every query take that long, as a
vector database across the network does.

Run: ``python -m llmcache.upstream_sim.vectorstore --listen 127.0.0.1:0`` (prints
``listening on URL``); ``GET /_sim/stats`` counts queries and writes.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import numpy as np
from aiohttp import web

from llmcache import serving

Point = dict[str, Any]
STORE: dict[str, dict[Any, Point]] = {}
STATS = {"queries": 0, "writes": 0}
QUERY_SECONDS = [0.0]


def _ok(result: Any) -> web.Response:
    return web.json_response({"result": result, "status": "ok", "time": 0.0001})


def _matches(payload: dict[str, Any], flt: Any) -> bool:
    if not flt:
        return True
    for cond in flt.get("must", []):
        if payload.get(cond.get("key")) != cond.get("match", {}).get("value"):
            return False
    return all(
        payload.get(c.get("key")) != c.get("match", {}).get("value")
        for c in flt.get("must_not", [])
    )


def _where(meta: dict[str, Any], where: Any) -> bool:
    return all(
        meta.get(k) == (v.get("$eq") if isinstance(v, dict) else v)
        for k, v in (where or {}).items()
    )


def _rank(points: list[Point], vector: list[float], limit: int) -> list[tuple[float, Point]]:
    if not points:
        return []
    q = np.asarray(vector, dtype=np.float64)
    q /= np.linalg.norm(q) or 1.0
    matrix = np.stack([p["unit"] for p in points])
    scores = matrix @ q
    order = np.argsort(-scores, kind="stable")[:limit]
    return [(float(scores[i]), points[i]) for i in order]


def _point(pid: Any, vector: list[float], payload: Any, **extra: Any) -> Point:
    v = np.asarray(vector, dtype=np.float64)
    unit = v / (np.linalg.norm(v) or 1.0)
    return {"id": pid, "vector": vector, "unit": unit, "payload": payload or {}, **extra}


async def _query_time() -> None:
    STATS["queries"] += 1
    if QUERY_SECONDS[0]:
        await asyncio.sleep(QUERY_SECONDS[0])  # the database's own time, simulated


# -- Qdrant ----------------------------------------------------------------------------------


async def q_create(request: web.Request) -> web.Response:
    STORE[request.match_info["c"]] = {}
    return _ok(True)


async def q_upsert(request: web.Request) -> web.Response:
    STATS["writes"] += 1
    body = await request.json()
    coll = STORE.setdefault(request.match_info["c"], {})
    for p in body["points"]:
        coll[p["id"]] = _point(p["id"], p["vector"], p.get("payload"))
    return _ok({"operation_id": STATS["writes"], "status": "completed"})


async def q_delete(request: web.Request) -> web.Response:
    STATS["writes"] += 1
    body = await request.json()
    coll = STORE.setdefault(request.match_info["c"], {})
    for pid in body.get("points", []):
        coll.pop(pid, None)
    return _ok({"operation_id": STATS["writes"], "status": "completed"})


def _q_hits(c: str, vector: list[float], body: dict[str, Any]) -> list[dict[str, Any]]:
    points = [p for p in STORE.get(c, {}).values() if _matches(p["payload"], body.get("filter"))]
    out = []
    for score, p in _rank(points, vector, int(body.get("limit", 10))):
        hit: dict[str, Any] = {"id": p["id"], "version": 0, "score": round(score, 6)}
        if body.get("with_payload"):
            hit["payload"] = p["payload"]
        out.append(hit)
    return out


async def q_search(request: web.Request) -> web.Response:
    await _query_time()
    body = await request.json()
    return _ok(_q_hits(request.match_info["c"], body["vector"], body))


async def q_query(request: web.Request) -> web.Response:
    await _query_time()
    body = await request.json()
    query = body["query"]
    vector = query["nearest"] if isinstance(query, dict) else query
    return _ok({"points": _q_hits(request.match_info["c"], vector, body)})


# -- Chroma ----------------------------------------------------------------------------------


def _cid(request: web.Request) -> str:
    return "chroma:" + request.match_info["c"]


async def c_write(request: web.Request) -> web.Response:
    STATS["writes"] += 1
    body = await request.json()
    op = request.match_info["op"]
    coll = STORE.setdefault(_cid(request), {})
    if op == "delete":
        for pid in body.get("ids") or []:
            coll.pop(pid, None)
        return web.json_response(None)
    for i, pid in enumerate(body["ids"]):
        coll[pid] = _point(
            pid,
            body["embeddings"][i],
            (body.get("metadatas") or [{}] * len(body["ids"]))[i],
            document=(body.get("documents") or [None] * len(body["ids"]))[i],
        )
    return web.json_response(True if op == "add" else None, status=201 if op == "add" else 200)


async def c_query(request: web.Request) -> web.Response:
    await _query_time()
    body = await request.json()
    n = int(body.get("n_results", 10))
    include = body.get("include", ["metadatas", "documents", "distances"])
    points = [
        p for p in STORE.get(_cid(request), {}).values() if _where(p["payload"], body.get("where"))
    ]
    out: dict[str, Any] = {"ids": [], "distances": [], "metadatas": [], "documents": []}
    out.update({"embeddings": None, "uris": None, "data": None, "include": include})
    for q in body["query_embeddings"]:
        ranked = _rank(points, q, n)
        out["ids"].append([p["id"] for _, p in ranked])
        out["distances"].append([round(1 - s, 6) for s, _ in ranked])
        out["metadatas"].append([p["payload"] for _, p in ranked])
        out["documents"].append([p["document"] for _, p in ranked])
    return web.json_response(out)


async def stats(request: web.Request) -> web.Response:
    return web.json_response(STATS)


def create_app() -> web.Application:
    app = web.Application()
    r = app.router
    r.add_put("/collections/{c}", q_create)
    r.add_put("/collections/{c}/points", q_upsert)
    r.add_post("/collections/{c}/points/delete", q_delete)
    r.add_post("/collections/{c}/points/search", q_search)
    r.add_post("/collections/{c}/points/query", q_query)
    for base in ("/api/v2/tenants/{t}/databases/{d}/collections/{c}", "/api/v1/collections/{c}"):
        r.add_post(base + "/query", c_query)
        r.add_post(base + "/{op:add|upsert|update|delete}", c_write)
    r.add_get("/_sim/stats", stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--query-ms", type=float, default=0.0, help="time every query takes")
    args = parser.parse_args()
    QUERY_SECONDS[0] = args.query_ms / 1000
    serving.run(serving.serve(create_app(), args.listen))


if __name__ == "__main__":
    main()
