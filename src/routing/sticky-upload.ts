// Uploads are sticky: the `Location` of an upload session names the replica that owns
// it in a query parameter, and every later request of that upload goes there whatever
// routing does meanwhile. Clients keep Location's query string (Distribution itself puts
// state there), so no client change is needed.

export const stickyParameter = "_meridian_replica";

/** Adds the owning replica to an upload Location (relative or absolute). */
export function pinLocation(location: string, region: string): string {
  if (!location.includes("/blobs/uploads/")) return location;
  const separator = location.includes("?") ? "&" : "?";
  return `${location}${separator}${stickyParameter}=${encodeURIComponent(region)}`;
}

/** The replica a request is pinned to, and the URL to forward without the parameter. */
export function readPin(url: string): { region?: string; url: string } {
  const queryAt = url.indexOf("?");
  if (queryAt === -1) return { url };
  const query = new URLSearchParams(url.slice(queryAt + 1));
  const region = query.get(stickyParameter) ?? undefined;
  if (region === undefined) return { url };
  query.delete(stickyParameter);
  const rest = query.toString();
  return { region, url: `${url.slice(0, queryAt)}${rest ? `?${rest}` : ""}` };
}
