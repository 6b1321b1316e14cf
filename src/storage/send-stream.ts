// Pumps an object-store response body into a writable (a client's socket) without ending
// it: the next chunk is read only when the writable wants more, and a writable that fails
// or closes early stops the read (the response is destroyed, so the store connection is
// released rather than left to drain a blob nobody reads).
import type { Readable, Writable } from "node:stream";

/** Resolves once `sink` has taken every byte of `body`; rejects with the sink's failure. */
export async function sendStream(body: Readable, sink: Writable): Promise<void> {
  let failure: Error | undefined;
  let pending = 0;
  let wake: (() => void) | undefined;
  const settle = () =>
    new Promise<void>((resolve) => {
      wake = resolve;
    });
  const nudge = () => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  // A socket that closes may never call back for bytes it had not sent: stop waiting.
  const onClose = () => {
    failure ??= new Error("the client went away");
    nudge();
  };
  const onError = (error: Error) => {
    failure ??= error;
    nudge();
  };
  sink.once("close", onClose);
  sink.once("error", onError);
  sink.on("drain", nudge);
  try {
    for await (const chunk of body) {
      if (failure || sink.destroyed) throw failure ?? new Error("the client went away");
      pending += 1;
      const more = sink.write(chunk as Buffer, (error) => {
        pending -= 1;
        if (error) failure ??= error;
        nudge();
      });
      while (!more && sink.writableNeedDrain && !failure && !sink.destroyed) await settle();
    }
    while (pending > 0 && !failure && !sink.destroyed) await settle();
    if (failure) throw failure;
  } finally {
    sink.off("close", onClose);
    sink.off("error", onError);
    sink.off("drain", nudge);
    body.destroy();
  }
}
