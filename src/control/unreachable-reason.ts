// Says why a command failed, the way an operator reads it: "connection refused to
// 127.0.0.1:5002" rather than fetch's "fetch failed", whose cause hides below, and one
// line rather than a stack trace.

const phrases: Record<string, string> = {
  ECONNREFUSED: "connection refused to",
  ECONNRESET: "connection reset by",
  EHOSTUNREACH: "no route to",
  ENOTFOUND: "unknown host",
  ETIMEDOUT: "timed out connecting to",
};

export function unreachableReason(error: unknown, url: string): string {
  const { host } = new URL(url);
  if (error instanceof Error && error.name === "TimeoutError")
    return `no answer from ${host} in time`;
  const cause =
    error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === "string" ? cause.code : undefined;
  const phrase = code ? phrases[code] : undefined;
  if (phrase) return `${phrase} ${host}`;
  return `cannot reach ${host}: ${code ?? (error instanceof Error ? error.message : String(error))}`;
}

/** One line for any failure of a command. */
export function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; address?: unknown; port?: unknown } | undefined;
  // A failed connection (fetch hides it in the cause); a failed listen says so itself.
  if (
    typeof cause?.code === "string" &&
    cause.code in phrases &&
    typeof cause.address === "string"
  ) {
    return unreachableReason(error, `http://${cause.address}:${String(cause.port ?? "")}`);
  }
  return error.message.split("\n")[0] ?? error.message;
}
