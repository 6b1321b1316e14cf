// The `n`/`last` pagination of tag and catalog listings, and the `Link` header that
// points at the next page (RFC 5988, as the Distribution spec describes).
import type { Page } from "../../metadata/metadata-store.ts";
import { OciError } from "../../oci/oci-error.ts";

/** The largest page a client may ask for; larger `n` values are capped. */
export const maxPageSize = 10_000;

export function parsePage(query: URLSearchParams): Page {
  const n = query.get("n");
  const last = query.get("last") ?? undefined;
  if (n === null || n === "") return { last };
  if (!/^\d{1,9}$/.test(n)) throw new OciError("PAGINATION_NUMBER_INVALID", { n: n.slice(0, 32) });
  return { last, limit: Math.min(Number(n), maxPageSize) };
}

/**
 * Runs `list` for one page, fetching one extra entry to learn whether another page
 * follows; returns the page and, when it does, the `Link` header value.
 */
export async function paginate(
  page: Page,
  path: string,
  list: (page: Page) => Promise<string[]>,
): Promise<{ items: string[]; link?: string }> {
  if (page.limit === undefined) return { items: await list(page) };
  if (page.limit === 0) return { items: [] };
  const items = await list({ last: page.last, limit: page.limit + 1 });
  if (items.length <= page.limit) return { items };
  const shown = items.slice(0, page.limit);
  const last = shown[shown.length - 1] ?? "";
  const next = `${path}?n=${page.limit}&last=${encodeURIComponent(last)}`;
  return { items: shown, link: `<${next}>; rel="next"` };
}
