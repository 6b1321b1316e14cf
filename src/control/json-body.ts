// The JSON body of an admin API request, checked against its schema where it enters: a
// body that is not JSON, or does not fit, is a 400 naming the first field at fault.
import type { z } from "zod";
import { OciError } from "../oci/oci-error.ts";

export function parseJsonBody<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, bytes: Buffer): T {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new OciError("UNSUPPORTED", { reason: "the body must be JSON" }, { status: 400 });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new OciError(
      "UNSUPPORTED",
      { reason: `${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}` },
      { status: 400 },
    );
  }
  return parsed.data;
}
