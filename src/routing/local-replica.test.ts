import assert from "node:assert/strict";
import { createServer, IncomingMessage, request, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { it } from "node:test";
import { EndpointResponse, serveLocally } from "./local-replica.ts";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * An endpoint's server whose every request goes to `handle` in-process; a held answer is
 * replaced by a plain 200 "fallback", as the next replica's would be.
 */
async function serveThrough(handle: Handler, holdErrors: boolean) {
  const outcomes: string[] = [];
  const server = createServer(
    { IncomingMessage, ServerResponse: EndpointResponse },
    async (req, res) => {
      const outcome = await serveLocally(
        req,
        res,
        { region: "westus", handle },
        {
          path: req.url ?? "/",
          holdErrors,
        },
      );
      outcomes.push(outcome);
      if (outcome === "retry") {
        res.writeHead(200, { "Content-Length": "8" });
        res.end("fallback");
      }
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const get = (path: string) =>
    new Promise<{ status: number; headers: IncomingMessage["headers"]; body: string }>(
      (resolve, reject) => {
        request(`http://127.0.0.1:${port}${path}`, { headers: { Connection: "close" } }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            body += chunk;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        })
          .on("error", reject)
          .end();
      },
    );
  return { get, outcomes, close: () => new Promise((resolve) => server.close(resolve)) };
}

it("holds back a 5xx whose head Node writes implicitly from end", async () => {
  const endpoint = await serveThrough((_req, res) => {
    res.setHeader("X-Broken", "yes");
    res.statusCode = 503;
    res.end("disk failed");
  }, true);
  try {
    const answer = await endpoint.get("/v2/a/blobs/sha256:00");
    assert.equal(answer.status, 200);
    assert.equal(answer.body, "fallback");
    assert.equal(answer.headers["x-broken"], undefined);
    assert.equal(answer.headers["x-meridian-replica"], undefined);
    assert.deepEqual(endpoint.outcomes, ["retry"]);
  } finally {
    await endpoint.close();
  }
});

it("marks and pins an in-process answer however its head is written", async () => {
  const endpoint = await serveThrough((req, res) => {
    if (req.url?.startsWith("/array")) {
      res.writeHead(202, ["Location", "/v2/a/blobs/uploads/u1", "Content-Length", "0"]);
      res.end();
    } else {
      // No writeHead at all: Node writes the head inside end, with the body's length.
      res.setHeader("Location", "/v2/a/blobs/uploads/u2?state=x");
      res.statusCode = 202;
      res.end("ok");
    }
  }, true);
  try {
    const array = await endpoint.get("/array");
    assert.equal(array.status, 202);
    assert.equal(array.headers.location, "/v2/a/blobs/uploads/u1?_meridian_replica=westus");
    assert.equal(array.headers["x-meridian-replica"], "westus");
    const implicit = await endpoint.get("/implicit");
    assert.equal(
      implicit.headers.location,
      "/v2/a/blobs/uploads/u2?state=x&_meridian_replica=westus",
    );
    assert.equal(implicit.headers["x-meridian-replica"], "westus");
    assert.equal(implicit.headers["content-length"], "2", "the length Node computes is kept");
    assert.equal(implicit.body, "ok");
    assert.deepEqual(endpoint.outcomes, ["done", "done"]);
  } finally {
    await endpoint.close();
  }
});

it("sends a 5xx as it is when there is nobody to hold it back for", async () => {
  const endpoint = await serveThrough((_req, res) => {
    res.writeHead(503, { "Content-Length": "4" });
    res.end("down");
  }, false);
  try {
    const answer = await endpoint.get("/v2/");
    assert.equal(answer.status, 503);
    assert.equal(answer.body, "down");
    assert.equal(answer.headers["x-meridian-replica"], "westus");
  } finally {
    await endpoint.close();
  }
});
