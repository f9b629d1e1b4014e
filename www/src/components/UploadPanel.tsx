// The upload card: picker, the batch's options, and one row per file with
// its progress, a cancel button and the outcome.
import { useEffect, useRef, useState } from 'preact/hooks';
import { get, type Domain } from '../api';
import { useApp } from '../app-context';
import { copyText } from '../clipboard';
import { bytes } from '../format';
import {
  addFiles,
  cancel,
  clearFinished,
  getCopyOnDone,
  getOptions,
  setCopyOnDone,
  setOptions,
  useUploads,
  type Item,
} from '../uploads';
import { Icon } from './Icons';

const EXPIRIES: [string, string][] = [
  ['never', 'Never'],
  ['10m', '10 minutes'],
  ['1h', '1 hour'],
  ['1d', '1 day'],
  ['7d', '7 days'],
  ['30d', '30 days'],
];

export function UploadPanel() {
  const { config, me } = useApp();
  const items = useUploads();
  const input = useRef<HTMLInputElement>(null);
  const [domains, setDomains] = useState<Domain[]>([]);
  const [wide, setWide] = useState(() => matchMedia('(min-width: 641px)').matches);
  const opts = getOptions();

  useEffect(() => {
    get<{ domains: Domain[] }>('/api/domains').then((d) => setDomains(d.domains), () => {});
  }, []);

  const pick = (e: Event) => {
    const el = e.currentTarget as HTMLInputElement;
    if (el.files?.length) addFiles(Array.from(el.files), config);
    el.value = ''; // the same file can be picked again
  };

  const defaultName = me.default_domain ?? domains[0]?.name;
  const expiryLabel = EXPIRIES.find(([v]) => v === opts.expires)?.[1] ?? opts.expires;
  const summary = [
    opts.domain || defaultName || 'default domain',
    opts.expires === 'never' ? 'never expires' : `expires in ${expiryLabel}`,
    opts.maxViews.trim() ? `${opts.maxViews.trim()} ${opts.maxViews.trim() === '1' ? 'view' : 'views'}` : 'unlimited views',
  ].join(' · ');
  const finished = items.some((it) => it.status !== 'queued' && it.status !== 'uploading');

  return (
    <section class="card upload-card" aria-labelledby="upload-title">
      <div class="upload-drop">
        <div class="upload-icon">
          <Icon name="upload" size={26} />
        </div>
        <div class="upload-text">
          <h2 id="upload-title">Upload files</h2>
          <p class="muted">
            Drop files anywhere on the page, paste a screenshot with <kbd>Ctrl</kbd>+<kbd>V</kbd>, or pick them. Up to{' '}
            {bytes(config.max_file_size)} each.
          </p>
        </div>
        <button type="button" class="btn primary" onClick={() => input.current?.click()} data-testid="upload-button">
          <Icon name="upload" size={16} />
          <span>Choose files</span>
        </button>
        <input
          ref={input}
          type="file"
          multiple
          class="visually-hidden"
          tabIndex={-1}
          aria-label="Choose files to upload"
          accept={config.allowed_extensions.join(',')}
          onChange={pick}
          data-testid="upload-input"
        />
      </div>

      {/* on a phone the options fold away under a one-line summary */}
      <details class="upload-more" open={wide} onToggle={(e) => setWide((e.currentTarget as HTMLDetailsElement).open)}>
        <summary>
          Options <span class="muted">· {summary}</span>
        </summary>
        <div class="upload-options">
          <label class="field compact">
            <span>Domain</span>
            <select
              value={opts.domain}
              onChange={(e) => setOptions({ ...opts, domain: e.currentTarget.value })}
              data-testid="upload-domain"
            >
              <option value="">{defaultName ? `Default (${defaultName})` : 'Default'}</option>
              {domains.map((d) => (
                <option key={d.name} value={d.name}>
                  {d.name}
                </option>
              ))}
            </select>
          </label>
          <label class="field compact">
            <span>Expires</span>
            <select
              value={opts.expires}
              onChange={(e) => setOptions({ ...opts, expires: e.currentTarget.value })}
              data-testid="upload-expires"
            >
              {EXPIRIES.map(([v, l]) => (
                <option key={v} value={v}>
                  {l}
                </option>
              ))}
            </select>
          </label>
          <label class="field compact">
            <span>Max views</span>
            <input
              type="number"
              min={1}
              max={2147483647}
              step={1}
              inputMode="numeric"
              placeholder="Unlimited"
              value={opts.maxViews}
              onInput={(e) => setOptions({ ...opts, maxViews: e.currentTarget.value })}
              data-testid="upload-max-views"
            />
          </label>
          <label class="check">
            <input
              type="checkbox"
              checked={getCopyOnDone()}
              onChange={(e) => setCopyOnDone(e.currentTarget.checked)}
              data-testid="upload-copy-setting"
            />
            <span>Copy the link when an upload finishes</span>
          </label>
        </div>
        {opts.maxViews.trim() === '1' && <p class="hint burn">Burn after reading: the file is deleted after its first view.</p>}
      </details>

      {items.length > 0 && (
        <div class="upload-list">
          <ul aria-label="Uploads">
            {items.map((it) => (
              <UploadRow key={it.key} it={it} />
            ))}
          </ul>
          {finished && (
            <button type="button" class="btn ghost small" onClick={clearFinished} data-testid="upload-clear">
              Clear finished
            </button>
          )}
        </div>
      )}
    </section>
  );
}

function UploadRow({ it }: { it: Item }) {
  const { toast } = useApp();
  const pct = it.size ? Math.round((it.loaded / it.size) * 100) : 0;
  const active = it.status === 'queued' || it.status === 'uploading';
  return (
    <li class={`upload-item ${it.status}`} data-testid="upload-item" data-status={it.status}>
      <div class="upload-row">
        <span class="upload-name" title={it.name}>
          {it.name}
        </span>
        <span class="upload-size muted">
          {active ? `${bytes(it.loaded)} / ${bytes(it.size)}` : bytes(it.size)}
        </span>
        {active && (
          <button
            type="button"
            class="btn ghost small"
            onClick={() => cancel(it.key)}
            aria-label={`Cancel upload of ${it.name}`}
            data-testid="upload-cancel"
          >
            Cancel
          </button>
        )}
      </div>
      {active && (
        <progress
          max={it.size || 1}
          value={it.loaded}
          aria-label={`Uploading ${it.name}: ${pct}%`}
          data-testid="upload-progress"
        />
      )}
      {it.status === 'done' && it.result && (
        <div class="upload-result">
          <Icon name="check" size={16} />
          <a href={it.result.url} target="_blank" rel="noopener noreferrer" data-testid="upload-result-link">
            {it.result.url}
          </a>
          <button
            type="button"
            class="btn ghost small"
            data-testid="upload-copy"
            onClick={() =>
              copyText(it.result!.url).then(
                () => toast('Link copied'),
                () => toast('The link could not be copied', 'error'),
              )
            }
          >
            <Icon name="copy" size={14} />
            <span>Copy</span>
          </button>
        </div>
      )}
      {active && it.note && (
        <p class="muted small-text" data-testid="upload-note">
          {it.note}
        </p>
      )}
      {it.status === 'error' && (
        <p class="upload-error" role="alert" data-testid="upload-error">
          {it.error}
        </p>
      )}
      {it.status === 'cancelled' && <p class="muted small-text">Cancelled.</p>}
    </li>
  );
}
