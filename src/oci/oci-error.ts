// The one error type of the registry: an OCI error code from the table, an optional
// detail for the client, and optional response headers (e.g. `Range` on a 416).
import { type ErrorCode, errorCodes } from "./error-codes.ts";

export class OciError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: ErrorCode,
    detail?: unknown,
    options: { headers?: Record<string, string>; cause?: unknown; status?: number } = {},
  ) {
    super(errorCodes[code].message, { cause: options.cause });
    this.name = "OciError";
    this.code = code;
    this.status = options.status ?? errorCodes[code].status;
    this.detail = detail;
    this.headers = options.headers ?? {};
  }

  /** The spec's JSON error body. */
  toBody(): { errors: { code: string; message: string; detail?: unknown }[] } {
    return { errors: [{ code: this.code, message: this.message, detail: this.detail ?? {} }] };
  }
}
