// The hashing thread behind hash-thread.ts: keeps the running hashes of blob writes and
// feeds them the bytes the main thread has just written, read back from the file (the
// page cache), so that the event loop only receives and writes. Kept as JavaScript
// source and started with `eval`: the thread needs no TypeScript loader (so it stays
// small), and the code goes wherever this module goes, a bundle of src/ included.
//
// Requests, handled in order (each answered with { id } or { id, error }):
//   { id, op: "open", key, algorithm }          starts a hash
//   { id, op: "absorb", key, path, from, to }   hashes bytes [from, to) of a file
//   { id, op: "digest", key }                   answers { id, hex }; the hash goes on
//   { op: "close", key }                        forgets the hash (no answer)

export const hashWorkerSource = `
"use strict";
const { createHash } = require("node:crypto");
const { closeSync, openSync, readSync } = require("node:fs");
const { parentPort } = require("node:worker_threads");

const absorbChunkBytes = 1024 * 1024;
const hashes = new Map();
let absorbBuffer;

function hashOf(key) {
  const hash = hashes.get(key);
  if (!hash) throw new Error(\`no hash \${key}\`);
  return hash;
}

function absorb(hash, path, from, to) {
  absorbBuffer ??= Buffer.allocUnsafeSlow(absorbChunkBytes);
  const fd = openSync(path, "r");
  try {
    let position = from;
    while (position < to) {
      const length = Math.min(absorbBuffer.length, to - position);
      const read = readSync(fd, absorbBuffer, 0, length, position);
      if (read === 0) throw new Error(\`\${path} is shorter than \${to} bytes\`);
      hash.update(absorbBuffer.subarray(0, read));
      position += read;
    }
  } finally {
    closeSync(fd);
  }
}

parentPort.on("message", (message) => {
  if (message.op === "close") {
    hashes.delete(message.key);
    return;
  }
  try {
    switch (message.op) {
      case "open":
        hashes.set(message.key, createHash(message.algorithm));
        break;
      case "absorb":
        absorb(hashOf(message.key), message.path, message.from, message.to);
        break;
      case "digest":
        parentPort.postMessage({ id: message.id, hex: hashOf(message.key).copy().digest("hex") });
        return;
      default:
        throw new Error(\`unknown request \${message.op}\`);
    }
    parentPort.postMessage({ id: message.id });
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: String(error?.message ?? error) });
  }
});
`;
