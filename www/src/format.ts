// Small formatting helpers shared by the pages.

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** 48213 → "47.1 KB" (binary multiples, as quotas are set). */
export function bytes(n: number): string {
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[i]}`;
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** "3 min ago", "in 2 h": for the gallery, where exact times are noise. */
export function relative(iso: string): string {
  const s = (new Date(iso).getTime() - Date.now()) / 1000;
  const a = Math.abs(s);
  const [v, u] = a < 60 ? [a, 's'] : a < 3600 ? [a / 60, 'min'] : a < 86400 ? [a / 3600, 'h'] : [a / 86400, 'd'];
  const r = `${Math.round(v)} ${u}`;
  if (a < 45) return 'just now';
  return s < 0 ? `${r} ago` : `in ${r}`;
}

export function isExpired(expires_at: string | null): boolean {
  return !!expires_at && new Date(expires_at).getTime() <= Date.now();
}

/** ".PNG" of "Shot.PNG", lower-cased; "" when there is none. */
export function extension(name: string): string {
  const i = name.lastIndexOf('.');
  return i > 0 ? name.slice(i).toLowerCase() : '';
}
