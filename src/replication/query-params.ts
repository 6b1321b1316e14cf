// Whole-number query parameters of the peer API, refused with the OCI error when malformed.
import { OciError } from "../oci/oci-error.ts";

/** The parameter as a whole number, or `fallback` when absent. */
export function integerParam(query: URLSearchParams, name: string, fallback: number): number {
  const value = query.get(name);
  if (value === null || value === "") return fallback;
  if (!/^\d{1,15}$/.test(value))
    throw new OciError("PAGINATION_NUMBER_INVALID", { [name]: value.slice(0, 20) });
  return Number(value);
}
