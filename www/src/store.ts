// Small pieces of state kept in this browser.

const PREFIX = 'bulletdrop.';

export function load<T>(key: string, fallback: T): T {
  try {
    const v = localStorage.getItem(PREFIX + key);
    return v == null ? fallback : (JSON.parse(v) as T);
  } catch {
    return fallback;
  }
}

export function save(key: string, value: unknown) {
  try {
    localStorage.setItem(PREFIX + key, JSON.stringify(value));
  } catch {
    /* private mode or full: the setting just does not stick */
  }
}

/* The server keeps only a hash of each delete link, so the list of uploads
 * cannot give them back: the app remembers the ones it was handed, by upload
 * id, for the files uploaded from this browser. */
const MAX_DELETE_LINKS = 2000;

export function rememberDeleteLink(id: string, url: string) {
  const m = load<Record<string, string>>('deleteLinks', {});
  m[id] = url;
  const keys = Object.keys(m);
  for (const k of keys.slice(0, Math.max(0, keys.length - MAX_DELETE_LINKS))) delete m[k];
  save('deleteLinks', m);
}

export function deleteLinkOf(id: string): string | undefined {
  return load<Record<string, string>>('deleteLinks', {})[id];
}

export function forgetDeleteLink(id: string) {
  const m = load<Record<string, string>>('deleteLinks', {});
  delete m[id];
  save('deleteLinks', m);
}
