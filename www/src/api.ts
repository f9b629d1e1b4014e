// The JSON API, same origin. The browser holds the session in an HttpOnly
// cookie, so nothing here ever sees a token.

export interface Config {
  registration: 'open' | 'invite' | 'closed';
  max_file_size: number;
  allowed_extensions: string[];
  base_domain: string | null;
  version: string;
}

export interface Profile {
  id: number;
  username: string;
  role: 'user' | 'admin';
  disabled: boolean;
  usage: { bytes: number; files: number };
  quota_bytes: number | null;
  default_domain: string | null;
  created_at: string;
}

export interface Upload {
  id: string;
  url: string;
  name: string;
  category: 'images' | 'documents' | 'other';
  content_type: string;
  size: number;
  sha256: string;
  created_at: string;
  expires_at: string | null;
  max_views: number | null;
  domain: string;
  views: number;
  /* only in the answer to the upload itself */
  delete_url?: string;
}

export interface ApiKey {
  id: number;
  name: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  key?: string;
}

export interface Domain {
  name: string;
  enabled: boolean;
  created_at: string;
}

export interface Invite {
  id: number;
  code?: string;
  created_at?: string;
  expires_at: string;
  created_by?: string | null;
  used_by?: string | null;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    public detail: string,
    /* seconds, from Retry-After on a 429 */
    public retryAfter: number | null = null,
  ) {
    super(detail || code);
  }
}

/* Words for the codes a person is likely to meet; the server's detail is
 * shown beside them, so an unknown code still says something. */
const WORDS: Record<string, string> = {
  invalid_credentials: 'Wrong user name or password.',
  account_disabled: 'This account is disabled. Ask an administrator.',
  too_many_attempts: 'Too many attempts.',
  rate_limited: 'Too many requests at once.',
  invalid_username: 'User names have 3 to 32 letters, digits, “_”, “.” or “-”.',
  invalid_password: 'Passwords have 8 to 1024 characters.',
  registration_closed: 'Registration is closed on this server.',
  invite_required: 'An invite code is needed to register.',
  invalid_invite: 'That invite code is unknown, used or expired.',
  username_taken: 'That user name is taken.',
  wrong_password: 'The current password is wrong.',
  too_many_keys: 'You have too many API keys; revoke one first.',
  file_too_large: 'The file is larger than the server accepts.',
  quota_exceeded: 'This upload would go over your storage quota.',
  extension_not_allowed: 'Files of this type are not allowed.',
  type_mismatch: 'The file’s contents do not match its extension.',
  empty_file: 'The file is empty.',
  invalid_domain: 'That domain is not valid or not enabled.',
  invalid_expiry: 'That expiry is not valid.',
  invalid_max_views: 'Max views must be a whole number from 1.',
  database_unavailable: 'The server’s database is unavailable; try again shortly.',
  insufficient_storage: 'The server is out of disk space.',
  domain_exists: 'That domain is already registered.',
  no_base_domain: 'The server has no base domain to seed from.',
  cannot_change_self: 'You cannot demote or disable yourself.',
  csrf: 'The request was refused as cross-site.',
  forbidden: 'You are not allowed to do that.',
  not_found: 'Not found (it may have been deleted).',
  network: 'Could not reach the server.',
};

/** A sentence for an error: our words, then the server's own detail. */
export function describeError(e: unknown): string {
  if (!(e instanceof ApiError)) return e instanceof Error ? e.message : String(e);
  const words = WORDS[e.code];
  let text = words ?? `Error ${e.status || ''} ${e.code}`.replace('  ', ' ');
  if ((e.code === 'too_many_attempts' || e.code === 'rate_limited') && e.retryAfter != null) {
    text += ` Try again in ${waitText(e.retryAfter)}.`;
  }
  if (e.detail && !saysTheSame(words, e.detail)) text += ` (${e.detail})`;
  return text;
}

/* The server's detail often says what our words say; it is shown only when
 * it adds something (most of its words are not in ours). */
function saysTheSame(words: string | undefined, detail: string): boolean {
  if (!words) return false;
  const bag = (t: string) =>
    (t.toLowerCase().match(/[a-z]{3,}/g) ?? []).map((w) => w.replace(/s$/, ''));
  const ours = new Set(bag(words));
  const theirs = bag(detail);
  return theirs.length > 0 && theirs.filter((w) => ours.has(w)).length >= 0.7 * theirs.length;
}

export function waitText(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  return `${Math.ceil(seconds / 60)} minutes`;
}

/* Signed out: App installs a handler that sends the user to sign in. */
let onUnauthorized: (e: ApiError) => void = () => {};
export function setUnauthorizedHandler(f: (e: ApiError) => void) {
  onUnauthorized = f;
}

/** Turns a failed answer's body into an ApiError. */
export function errorFrom(status: number, text: string, retryAfter: string | null): ApiError {
  let code = `http_${status}`;
  let detail = '';
  try {
    const j = JSON.parse(text);
    if (j && typeof j.error === 'string') code = j.error;
    if (j && typeof j.detail === 'string') detail = j.detail;
  } catch {
    /* not JSON (a proxy's page): keep the status */
  }
  const ra = retryAfter != null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : null;
  return new ApiError(status, code, detail, ra);
}

interface Options {
  /* a 401 here is an answer to show, not a sign-out (the login form, the
   * prefetch at boot) */
  quiet401?: boolean;
}

export async function api<T>(method: string, path: string, body?: unknown, opt: Options = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', '');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  if (!res.ok) {
    const e = errorFrom(res.status, text, res.headers.get('Retry-After'));
    // a disabled account is always news: the server may clear the cookie
    // with that answer, so requests racing it only see a 401
    if ((res.status === 401 && !opt.quiet401) || e.code === 'account_disabled') onUnauthorized(e);
    throw e;
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

export const get = <T>(path: string) => api<T>('GET', path);
