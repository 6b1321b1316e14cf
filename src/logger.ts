// The process logger: JSON lines on stdout (pino), written asynchronously so that
// logging never blocks a request.
import pino, { type Logger } from "pino";

export function createLogger(level: string): Logger {
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ sync: false }),
  );
}

/** Logs a line that is always written, whatever the level (start-up, shutdown). */
export function announce(log: Logger, fields: Record<string, unknown>, message: string): void {
  log.child({}, { level: "info" }).info(fields, message);
}
