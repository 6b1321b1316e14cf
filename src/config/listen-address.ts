// Splits a validated `host:port` listen address into what net.Server.listen takes.

export function parseListenAddress(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(":");
  let host = listen.slice(0, colon);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return { host: host === "" ? "0.0.0.0" : host, port: Number(listen.slice(colon + 1)) };
}
