// My files: the upload card and a gallery of the user's uploads, newest
// first, paged by keyset as the user scrolls.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, describeError, get, type Upload } from '../api';
import { useApp } from '../app-context';
import { copyText } from '../clipboard';
import { Dialog } from '../components/Dialog';
import { Icon, type IconName } from '../components/Icons';
import { UploadPanel } from '../components/UploadPanel';
import { bytes, dateTime, isExpired, relative } from '../format';
import { onLinkClick } from '../router';
import { onUploaded } from '../uploads';

const PAGE = 100;

type Filter = 'all' | Upload['category'];
const FILTERS: [Filter, string][] = [
  ['all', 'All'],
  ['images', 'Images'],
  ['documents', 'Documents'],
  ['other', 'Other'],
];

type Page = { uploads: Upload[]; next_before: string | null };
const firstPage = `/api/uploads?limit=${PAGE}`;

/* The first page, asked for at boot beside the profile rather than after
 * it: one round trip less before the gallery shows. */
let early: Promise<Page> | null = null;
export function prefetchFiles() {
  early = api<Page>('GET', firstPage, undefined, { quiet401: true });
  early.catch(() => {}); // the profile's answer deals with a 401
}

export function Files() {
  const { refreshMe, toast, confirm } = useApp();
  const [items, setItems] = useState<Upload[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [started, setStarted] = useState(false); // the first page arrived
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState('');
  const [filter, setFilter] = useState<Filter>('all');
  const [details, setDetails] = useState<Upload | null>(null);
  const [sentinelSeen, setSentinelSeen] = useState(false);
  const sentinel = useRef<HTMLDivElement>(null);
  const busy = useRef(false);

  const load = useCallback(async (before: string | null) => {
    if (busy.current) return;
    busy.current = true;
    setLoading(true);
    setError('');
    try {
      let page: Page;
      if (!before && early) {
        // a visitor signed out at boot got a 401 there: ask again now
        const e = early;
        early = null;
        page = await e.catch(() => get<Page>(firstPage));
      } else {
        page = await get<Page>(before ? `${firstPage}&before=${encodeURIComponent(before)}` : firstPage);
      }
      setItems((old) => {
        const seen = new Set(old.map((u) => u.id));
        return [...old, ...page.uploads.filter((u) => !seen.has(u.id))];
      });
      setNext(page.next_before);
      setStarted(true);
    } catch (e) {
      setError(describeError(e));
    } finally {
      busy.current = false;
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    load(null);
  }, []);

  // New uploads go on top as they finish.
  useEffect(
    () =>
      onUploaded((u) =>
        setItems((old) => (old.some((x) => x.id === u.id) ? old : [u, ...old])),
      ),
    [],
  );

  // Infinite scroll: while the sentinel below the grid is in view, load the
  // next page. The effect re-runs after each page, so a filter that hides
  // most items keeps paging until the view is filled or there is no more.
  useEffect(() => {
    const el = sentinel.current;
    if (!el || !('IntersectionObserver' in window)) return;
    const io = new IntersectionObserver((es) => setSentinelSeen(es.some((e) => e.isIntersecting)), {
      rootMargin: '600px 0px',
    });
    io.observe(el);
    return () => io.disconnect();
  }, [started]);
  useEffect(() => {
    if (sentinelSeen && next && !loading && !error) load(next);
  }, [sentinelSeen, next, loading, error]);

  const remove = async (u: Upload) => {
    const ok = await confirm({
      title: `Delete “${u.name}”?`,
      message: 'The file and its link stop working at once. This cannot be undone.',
      ok: 'Delete',
      danger: true,
    });
    if (!ok) return;
    try {
      await api('DELETE', `/api/uploads/${encodeURIComponent(u.id)}`);
    } catch (e) {
      // already gone is what the user wanted
      if (!(e instanceof ApiError && e.code === 'not_found')) {
        toast(`Could not delete: ${describeError(e)}`, 'error');
        return;
      }
    }
    setItems((old) => old.filter((x) => x.id !== u.id));
    setDetails(null);
    refreshMe();
    toast(`Deleted ${u.name}`);
  };

  const copy = (text: string, what: string) =>
    copyText(text).then(
      () => toast(`${what} copied`),
      (e) => toast(`Could not copy: ${e?.message || e}`, 'error'),
    );

  const shown = filter === 'all' ? items : items.filter((u) => u.category === filter);
  const actions = { copy, remove, details: setDetails };

  return (
    <>
      <UploadPanel />
      <section class="gallery-section" aria-labelledby="files-title">
        <div class="section-head">
          <h1 id="files-title">My files</h1>
          <div class="segmented" role="group" aria-label="Show" data-testid="category-filter">
            {FILTERS.map(([v, l]) => (
              <button
                key={v}
                type="button"
                aria-pressed={filter === v}
                data-value={v}
                onClick={() => setFilter(v)}
              >
                {l}
              </button>
            ))}
          </div>
        </div>

        {started && items.length === 0 && !next ? (
          <EmptyState />
        ) : (
          <ul class="gallery" data-testid="gallery" aria-busy={loading}>
            {shown.map((u) => (
              <Tile key={u.id} u={u} {...actions} />
            ))}
          </ul>
        )}
        {started && shown.length === 0 && items.length > 0 && !next && (
          <p class="muted center" data-testid="filter-empty">
            Nothing in this category yet.
          </p>
        )}
        {error && (
          <p class="alert" role="alert">
            Could not load your files: {error}{' '}
            <button type="button" class="btn small" onClick={() => load(next)}>
              Retry
            </button>
          </p>
        )}
        <div ref={sentinel} class="sentinel" />
        {!started && !error && <div class="spinner" role="status" aria-label="Loading files" />}
        {next && !error && (
          <div class="center">
            <button type="button" class="btn" disabled={loading} onClick={() => load(next)} data-testid="load-more">
              {loading ? 'Loading…' : 'Load more'}
            </button>
          </div>
        )}
      </section>
      {details && <Details u={details} onClose={() => setDetails(null)} {...actions} />}
    </>
  );
}

interface Actions {
  copy: (text: string, what: string) => void;
  remove: (u: Upload) => void;
  details: (u: Upload) => void;
}

/** Whether showing the file would cost something: a view of a limited
 *  file is spent by every fetch, and an expired one is gone. */
function previewable(u: Upload): boolean {
  return u.category === 'images' && u.max_views == null && !isExpired(u.expires_at);
}

function kindIcon(u: Upload): IconName {
  if (u.content_type.startsWith('image/')) return 'image';
  if (u.content_type.startsWith('video/')) return 'video';
  if (u.category === 'documents') return 'file';
  return 'box';
}

/* There are no thumbnails: a tile would load the whole file, which for a
 * large image is megabytes for a few hundred pixels (on a phone's data
 * too). Past this, a tile shows an icon; its details show the image. */
const TILE_IMAGE_MAX = 8 * 1024 * 1024;

function Preview({ u, tile }: { u: Upload; tile?: boolean }) {
  const large = tile && u.size > TILE_IMAGE_MAX;
  if (previewable(u) && !large) {
    return <img src={u.url} alt={u.name} loading="lazy" decoding="async" />;
  }
  const expired = isExpired(u.expires_at);
  const left = u.max_views != null ? Math.max(0, u.max_views - u.views) : null;
  return (
    <div class="placeholder">
      <Icon name={expired ? 'clock' : left != null ? 'eye' : kindIcon(u)} size={32} />
      <span class="ext">
        {expired
          ? 'Expired'
          : left != null
            ? `${left} view${left === 1 ? '' : 's'} left`
            : large && previewable(u)
              ? `Large image · ${bytes(u.size)}`
              : (u.name.split('.').pop() || '').toUpperCase()}
      </span>
    </div>
  );
}

function Tile({ u, copy, remove, details }: { u: Upload } & Actions) {
  const del = u.delete_url;
  return (
    <li class="tile" data-testid="gallery-item" data-id={u.id} data-category={u.category}>
      <button type="button" class="thumb" onClick={() => details(u)} aria-label={`Details of ${u.name}`}>
        <Preview u={u} tile />
        {u.expires_at && !isExpired(u.expires_at) && (
          <span class="badge" title={`Expires ${dateTime(u.expires_at)}`}>
            <Icon name="clock" size={12} /> {relative(u.expires_at)}
          </span>
        )}
      </button>
      <div class="tile-meta">
        <span class="tile-name" title={u.name}>
          {u.name}
        </span>
        <span class="tile-sub">
          {bytes(u.size)} · <time dateTime={u.created_at}>{relative(u.created_at)}</time>
        </span>
      </div>
      <div class="tile-actions">
        <a class="icon-btn" href={u.url} target="_blank" rel="noopener noreferrer" title="Open" aria-label={`Open ${u.name}`} data-testid="file-open">
          <Icon name="open" />
        </a>
        <button type="button" class="icon-btn" title="Copy link" aria-label={`Copy link of ${u.name}`} onClick={() => copy(u.url, 'Link')} data-testid="file-copy-link">
          <Icon name="link" />
        </button>
        <button
          type="button"
          class="icon-btn"
          title={del ? 'Copy delete link' : 'This file was uploaded before delete links could be shown again'}
          aria-label={`Copy delete link of ${u.name}`}
          disabled={!del}
          onClick={() => del && copy(del, 'Delete link')}
          data-testid="file-copy-delete"
        >
          <Icon name="copy" />
        </button>
        <button type="button" class="icon-btn" title="Details" aria-label={`Details of ${u.name}`} onClick={() => details(u)} data-testid="file-details">
          <Icon name="info" />
        </button>
        <button type="button" class="icon-btn danger" title="Delete" aria-label={`Delete ${u.name}`} onClick={() => remove(u)} data-testid="file-delete">
          <Icon name="trash" />
        </button>
      </div>
    </li>
  );
}

function Details({ u, onClose, copy, remove }: { u: Upload; onClose: () => void } & Actions) {
  const del = u.delete_url;
  const rows: [string, string][] = [
    ['Name', u.name],
    ['Size', `${bytes(u.size)} (${u.size.toLocaleString()} bytes)`],
    ['Type', u.content_type],
    ['Uploaded', dateTime(u.created_at)],
    ['Expires', u.expires_at ? dateTime(u.expires_at) + (isExpired(u.expires_at) ? ' (expired)' : '') : 'Never'],
    ['Views', u.max_views != null ? `${u.views} of ${u.max_views}` : String(u.views)],
    ['Domain', u.domain],
    ['SHA-256', u.sha256],
  ];
  return (
    <Dialog title="File details" onClose={onClose} testid="details-dialog" wide>
      <div class="details">
        <div class="details-preview">
          <Preview u={u} />
        </div>
        <dl class="kv">
          {rows.map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd class={k === 'SHA-256' ? 'mono' : undefined}>{v}</dd>
            </div>
          ))}
          <div>
            <dt>Link</dt>
            <dd>
              <a href={u.url} target="_blank" rel="noopener noreferrer" class="break" data-testid="details-link">
                {u.url}
              </a>
            </dd>
          </div>
        </dl>
      </div>
      <div class="actions">
        <button type="button" class="btn danger-ghost" onClick={() => remove(u)} data-testid="details-delete">
          <Icon name="trash" size={16} /> <span>Delete</span>
        </button>
        <span class="spacer" />
        {del && (
          <button type="button" class="btn" onClick={() => copy(del, 'Delete link')}>
            Copy delete link
          </button>
        )}
        <button type="button" class="btn" onClick={() => copy(u.url, 'Link')}>
          Copy link
        </button>
        <a class="btn primary" href={u.url} target="_blank" rel="noopener noreferrer">
          Open
        </a>
      </div>
    </Dialog>
  );
}

function EmptyState() {
  return (
    <div class="card empty" data-testid="empty-state">
      <div class="empty-icon">
        <Icon name="image" size={36} />
      </div>
      <h2>No files yet</h2>
      <p class="muted">
        Drop a file anywhere on this page, paste a screenshot with <kbd>Ctrl</kbd>+<kbd>V</kbd>, or use <strong>Choose files</strong> above.
      </p>
      <p class="muted">
        Taking screenshots on the desktop? Set up{' '}
        <a href="/settings#tools" onClick={onLinkClick} data-testid="empty-sharex-link">
          ShareX or Flameshot in Settings
        </a>{' '}
        and every capture lands here.
      </p>
    </div>
  );
}
