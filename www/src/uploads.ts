// The upload queue: files dropped, pasted or picked, sent a few at a time
// with XMLHttpRequest (fetch has no upload progress), each cancellable.
import { useEffect, useState } from 'preact/hooks';
import { errorFrom, describeError, waitText, type Config, type Profile, type Upload, type ApiError } from './api';
import { bytes, extension } from './format';
import { load, save } from './store';

export interface UploadOptions {
  domain: string; // '' = the server picks (the user's default)
  expires: string; // 'never', '1h', '7d', ...
  maxViews: string; // '' = unlimited
}

export type Status = 'queued' | 'uploading' | 'done' | 'error' | 'cancelled';

export interface Item {
  key: number;
  name: string;
  size: number;
  loaded: number; // bytes of the file sent so far
  status: Status;
  result?: Upload;
  error?: string;
  note?: string; // why a queued file waits
}

interface Job {
  item: Item;
  file: File;
  opts: UploadOptions;
  xhr?: XMLHttpRequest;
  notBefore?: number; // Date.now() before which it is not sent again
  retries?: number;
}

const PARALLEL = 3;
/* A server with a rate limit on uploads (nginx's limit_req) answers the
 * ones past it 429 rate_limited with Retry-After: they wait that long
 * and go again, this many times at most. */
const RATE_RETRIES = 20;

/* The options of the next batch.  Only the domain is kept across visits:
 * an expiry or a view limit picked once must not quietly apply to every
 * later upload, or to the next person to sign in on this browser. */
let options: UploadOptions = { domain: load<Partial<UploadOptions>>('uploadOptions', {}).domain ?? '', expires: 'never', maxViews: '' };
let copyOnDone = load<boolean>('copyOnDone', true);

export const getOptions = () => options;
export function setOptions(o: UploadOptions) {
  options = o;
  save('uploadOptions', { domain: o.domain });
  changed();
}
export const getCopyOnDone = () => copyOnDone;
export function setCopyOnDone(v: boolean) {
  copyOnDone = v;
  save('copyOnDone', v);
  changed();
}

let items: Item[] = [];
const jobs = new Map<number, Job>();
let nextKey = 1;
const listeners = new Set<() => void>();
const doneListeners = new Set<(u: Upload) => void>();
let unauthorized: (e: ApiError) => void = () => {};

function changed() {
  items = items.slice();
  listeners.forEach((l) => l());
}

function update(key: number, patch: Partial<Item>) {
  items = items.map((it) => (it.key === key ? { ...it, ...patch } : it));
  const j = jobs.get(key);
  if (j) j.item = items.find((it) => it.key === key)!;
  listeners.forEach((l) => l());
}

/* The signed-in user's profile, for what is left of a quota. */
let profile: () => Profile | null = () => null;
export function setProfileSource(f: () => Profile | null) {
  profile = f;
}

/* "You have 1.0 MB left of 5.0 MB.", or '' without a quota */
function quotaLeft(): string {
  const p = profile();
  if (!p || p.quota_bytes == null) return '';
  return ` You have ${bytes(Math.max(0, p.quota_bytes - p.usage.bytes))} left of ${bytes(p.quota_bytes)}.`;
}

export function setUploadUnauthorized(f: (e: ApiError) => void) {
  unauthorized = f;
}

/** Calls f with each upload that the server accepted. */
export function onUploaded(f: (u: Upload) => void): () => void {
  doneListeners.add(f);
  return () => void doneListeners.delete(f);
}

export function useUploads(): Item[] {
  const [, tick] = useState(0);
  useEffect(() => {
    const l = () => tick((n) => n + 1);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return items;
}

/** Why the server would refuse this file, known before a byte is sent. */
export function precheck(file: File, config: Config): string | null {
  if (file.size === 0) return 'The file is empty.';
  if (file.size > config.max_file_size) {
    return `Too large: ${bytes(file.size)} is over this server’s limit of ${bytes(config.max_file_size)}.`;
  }
  const p = profile();
  if (p && p.quota_bytes != null && file.size > p.quota_bytes - p.usage.bytes) {
    return `Over your storage quota: ${bytes(file.size)} does not fit.${quotaLeft()}`;
  }
  const allowed = config.allowed_extensions.map((e) => e.toLowerCase());
  const ext = extension(file.name);
  if (allowed.length && !allowed.includes(ext)) {
    return `${ext ? `“${ext}” files are` : 'Files without an extension are'} not allowed here. Allowed: ${allowed.join(' ')}.`;
  }
  return null;
}

export function addFiles(files: File[], config: Config, opts: UploadOptions = options) {
  for (const file of files) {
    const item: Item = { key: nextKey++, name: file.name || 'unnamed', size: file.size, loaded: 0, status: 'queued' };
    const refusal = precheck(file, config);
    if (refusal) {
      item.status = 'error';
      item.error = refusal;
    } else {
      jobs.set(item.key, { item, file, opts: { ...opts } });
    }
    items = [item, ...items];
  }
  changed();
  pump();
}

export function cancel(key: number) {
  const j = jobs.get(key);
  if (!j) return;
  jobs.delete(key);
  j.xhr?.abort();
  update(key, { status: 'cancelled' });
  pump();
}

/** Drops finished, failed and cancelled rows from the list. */
export function clearFinished() {
  items = items.filter((it) => it.status === 'queued' || it.status === 'uploading');
  changed();
}

function pump() {
  const now = Date.now();
  const running = [...jobs.values()].filter((j) => j.item.status === 'uploading').length;
  const waiting = [...jobs.values()].filter(
    (j) => j.item.status === 'queued' && (j.notBefore ?? 0) <= now,
  );
  for (const j of waiting.slice(0, Math.max(0, PARALLEL - running))) send(j);
}

/* Past the server's rate limit: the file goes back in the queue until
 * Retry-After has passed. */
function retryLater(j: Job, seconds: number) {
  j.retries = (j.retries ?? 0) + 1;
  j.notBefore = Date.now() + seconds * 1000;
  update(j.item.key, {
    status: 'queued',
    loaded: 0,
    note: `Waiting ${waitText(seconds)}: the server takes only a few uploads a second.`,
  });
  setTimeout(pump, seconds * 1000);
  pump();
}

function finish(j: Job, patch: Partial<Item>) {
  jobs.delete(j.item.key);
  update(j.item.key, patch);
  pump();
}

function send(j: Job) {
  const key = j.item.key;
  const xhr = new XMLHttpRequest();
  j.xhr = xhr;
  update(key, { status: 'uploading', note: undefined });

  xhr.open('POST', '/api/uploads');
  xhr.setRequestHeader('Accept', 'application/json');
  if (j.opts.domain) xhr.setRequestHeader('X-BulletDrop-Domain', j.opts.domain);
  if (j.opts.expires) xhr.setRequestHeader('X-BulletDrop-Expires', j.opts.expires);
  if (j.opts.maxViews.trim()) xhr.setRequestHeader('X-BulletDrop-Max-Views', j.opts.maxViews.trim());

  // e.total counts the multipart framing too; scale to the file's bytes.
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable && e.total > 0) {
      update(key, { loaded: Math.min(j.file.size, Math.round((e.loaded / e.total) * j.file.size)) });
    }
  };
  xhr.onload = () => {
    if (xhr.status === 201 || xhr.status === 200) {
      let u: Upload;
      try {
        u = JSON.parse(xhr.responseText);
      } catch {
        finish(j, { status: 'error', error: 'The server’s answer was not understood.' });
        return;
      }
      finish(j, { status: 'done', loaded: j.file.size, result: u });
      doneListeners.forEach((l) => l(u));
      return;
    }
    const e = errorFrom(xhr.status, xhr.responseText, xhr.getResponseHeader('Retry-After'));
    if (e.code === 'rate_limited' && (j.retries ?? 0) < RATE_RETRIES && jobs.has(key)) {
      retryLater(j, Math.min(60, Math.max(1, e.retryAfter ?? 1)));
      return;
    }
    finish(j, { status: 'error', error: describeError(e) + (e.code === 'quota_exceeded' ? quotaLeft() : '') });
    if (xhr.status === 401 || e.code === 'account_disabled') unauthorized(e);
  };
  // A refusal that comes before the body is sent may close the connection
  // under the browser's feet: then there is no status to read.
  xhr.onerror = () => {
    finish(j, {
      status: 'error',
      error: 'The server refused or dropped the upload before it finished (network error).',
    });
  };
  xhr.onabort = () => {
    /* cancel() already said so */
  };

  const form = new FormData();
  form.append('file', j.file, j.file.name || 'unnamed');
  xhr.send(form);
}
