// How the pages write sizes, durations and times.

export function bytes(value: number): string {
  if (!Number.isFinite(value)) return "-";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let n = value;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[unit]}`;
}

export function seconds(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return "-";
  if (value < 1) return "0 s";
  if (value < 120) return `${Math.round(value)} s`;
  if (value < 7200) return `${Math.round(value / 60)} min`;
  return `${(value / 3600).toFixed(1)} h`;
}

export function shortDigest(digest: string | undefined): string {
  if (!digest) return "-";
  const at = digest.indexOf(":");
  return at === -1
    ? digest.slice(0, 12)
    : `${digest.slice(0, at + 1)}${digest.slice(at + 1, at + 13)}`;
}

export function when(iso: string | undefined): string {
  if (!iso) return "-";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}
