// The follower's end of the feed stream against scripted peers on loopback: pages split
// across TCP writes arrive whole and in order; a peer of an older build that answers one
// JSON page is read as a stream of one; a line that is not a page is refused.
import assert from "node:assert/strict";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { PeerClient } from "./peer-client.ts";
import { feedStreamType } from "./wire-format.ts";

const secret = "feed-stream-test-secret";
const stamp = "1700000000000.000001.eastus";
const page = (head: number, seqs: number[]) => ({
  protocol: 1,
  head,
  log: "log-1",
  records: seqs.map((seq) => ({ seq, stamp, kind: "tag-delete", repository: "r", tag: `t${seq}` })),
});

const servers: Server[] = [];
after(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function peerAnswering(answer: (res: ServerResponse, url: URL) => void): Promise<PeerClient> {
  const server = createServer((req, res) => answer(res, new URL(req.url ?? "/", "http://peer")));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return new PeerClient({ region: "eastus", url: `http://127.0.0.1:${port}` }, secret);
}

async function collect(pages: AsyncIterable<{ head: number; records: { seq: number }[] }>) {
  const seen: { head: number; seqs: number[] }[] = [];
  for await (const each of pages)
    seen.push({ head: each.head, seqs: each.records.map((r) => r.seq) });
  return seen;
}

describe("feed stream client", () => {
  it("reads pages split across writes whole, in order", async () => {
    const client = await peerAnswering((res, url) => {
      assert.equal(url.searchParams.get("stream"), "1");
      res.writeHead(200, { "Content-Type": feedStreamType });
      const text = `${JSON.stringify(page(2, [1, 2]))}\n${JSON.stringify(page(3, [3]))}\n${JSON.stringify(page(3, []))}\n`;
      // Cut mid-line and mid-character boundaries alike.
      const bytes = Buffer.from(text);
      const cuts = [5, 40, 41, bytes.length - 3];
      let from = 0;
      for (const cut of cuts) {
        res.write(bytes.subarray(from, cut));
        from = cut;
      }
      res.end(bytes.subarray(from));
    });
    try {
      assert.deepEqual(await collect(client.feedStream(0, 1_000)), [
        { head: 2, seqs: [1, 2] },
        { head: 3, seqs: [3] },
        { head: 3, seqs: [] },
      ]);
    } finally {
      client.close();
    }
  });

  it("takes the one page of a peer that does not stream (an older build)", async () => {
    const client = await peerAnswering((res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(page(9, [8, 9])));
    });
    try {
      assert.deepEqual(await collect(client.feedStream(7, 1_000)), [{ head: 9, seqs: [8, 9] }]);
    } finally {
      client.close();
    }
  });

  it("refuses a line that is not a page", async () => {
    const client = await peerAnswering((res) => {
      res.writeHead(200, { "Content-Type": feedStreamType });
      res.end(`${JSON.stringify(page(1, [1]))}\nnot json\n`);
    });
    try {
      await assert.rejects(collect(client.feedStream(0, 1_000)), /not JSON/);
    } finally {
      client.close();
    }
  });
});
