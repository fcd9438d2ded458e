"""The application of the node tests: GET /ask?q=... makes one call with the official anthropic
SDK and answers with what came back. It knows nothing of llmcache: the ANTHROPIC_BASE_URL the
webhook sets is all that sends its traffic through the injected sidecar.

Runs in the ``app`` image (python + anthropic, tests/node/app.Containerfile) from a ConfigMap.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import anthropic

client = anthropic.Anthropic(api_key=os.environ.get("ANTHROPIC_API_KEY", "sk-ant-node-test"))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if not self.path.startswith("/ask"):
            self._send(200, {"ok": True})
            return
        query = parse_qs(urlsplit(self.path).query)
        prompt = query.get("q", ["hello"])[0]
        try:
            # ?t=<temperature>: sent in the body (the SDK has no parameter for it any more);
            # without it the API's default (1.0) applies.
            extra = {"temperature": float(query["t"][0])} if "t" in query else None
            raw = client.messages.with_raw_response.create(
                model="claude-sonnet-4-5",
                max_tokens=1024,  # a truncated answer (stop_reason max_tokens) is never cached
                messages=[{"role": "user", "content": prompt}],
                extra_body=extra,
            )
        except anthropic.APIStatusError as err:
            headers = err.response.headers
            self._send(200, {"status": err.status_code, "x-llmcache": headers.get("x-llmcache"),
                             "error": str(err)})  # fmt: skip
            return
        except Exception as err:  # the test reads it rather than a dropped connection
            self._send(200, {"status": None, "error": repr(err)})
            return
        message = raw.parse()
        self._send(
            200,
            {
                "status": raw.status_code,
                "x-llmcache": raw.headers.get("x-llmcache"),
                "baseUrl": str(client.base_url),
                "text": "".join(b.text for b in message.content if b.type == "text"),
            },
        )

    def _send(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
