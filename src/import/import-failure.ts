// The one error type of an import: a reason an operator can act on ("the source refused
// the credentials", "tag exists, use --force"), shown as the job's `reason` and as the
// CLI's one line. Anything else that fails an import is described from its message.
import { OciError } from "../oci/oci-error.ts";

export class ImportFailure extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "ImportFailure";
  }
}

/** One line for whatever stopped an import; never a stack, never a credential. */
export function failureReason(error: unknown): string {
  if (error instanceof ImportFailure) return error.message;
  if (error instanceof OciError) {
    const detail = error.detail as { reason?: unknown; digest?: unknown } | undefined;
    const extra =
      typeof detail?.reason === "string"
        ? `: ${detail.reason}`
        : typeof detail?.digest === "string"
          ? `: ${detail.digest}`
          : "";
    return `${error.code} ${error.message}${extra}`;
  }
  if (error instanceof Error) {
    const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
    const code = typeof cause?.code === "string" ? ` (${cause.code})` : "";
    return `${error.message.split("\n")[0] ?? "failed"}${code}`;
  }
  return String(error);
}
