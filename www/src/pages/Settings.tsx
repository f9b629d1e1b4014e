// Settings: storage, default domain, password, API keys and the desktop
// uploaders (ShareX, Flameshot).
import { useEffect, useState } from 'preact/hooks';
import { api, describeError, errorFrom, get, type ApiKey, type Domain, type Profile } from '../api';
import { useApp } from '../app-context';
import { copyText } from '../clipboard';
import { Icon } from '../components/Icons';
import { bytes, dateTime } from '../format';

export function Settings() {
  // a link to /settings#tools lands on the tools card
  useEffect(() => {
    if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
  }, []);
  return (
    <>
      <h1 class="page-title">Settings</h1>
      <div class="settings-grid">
        <Storage />
        <DefaultDomain />
        <Password />
      </div>
      <ApiKeys />
      <Tools />
    </>
  );
}

function Storage() {
  const { me } = useApp();
  const q = me.quota_bytes;
  const pct = q ? Math.min(100, (me.usage.bytes / q) * 100) : 0;
  return (
    <section class="card" aria-labelledby="storage-title">
      <h2 id="storage-title">Storage</h2>
      <p class="big" data-testid="usage">
        {bytes(me.usage.bytes)}
        <span class="muted"> {q != null ? `of ${bytes(q)}` : 'used'}</span>
      </p>
      {q != null ? (
        <progress class={pct > 90 ? 'meter full' : 'meter'} max={100} value={pct} aria-label={`${Math.round(pct)}% of your quota used`} />
      ) : (
        <p class="muted" data-testid="no-quota">
          No quota: store as much as the server has room for.
        </p>
      )}
      <p class="muted">
        {me.usage.files} file{me.usage.files === 1 ? '' : 's'}
      </p>
    </section>
  );
}

function DefaultDomain() {
  const { me, setMe, toast } = useApp();
  const [domains, setDomains] = useState<Domain[] | null>(null);
  const [value, setValue] = useState(me.default_domain ?? '');
  const [error, setError] = useState('');

  useEffect(() => {
    get<{ domains: Domain[] }>('/api/domains').then((d) => setDomains(d.domains), (e) => setError(describeError(e)));
  }, []);

  const save = async (e: Event) => {
    e.preventDefault();
    setError('');
    try {
      setMe(await api<Profile>('PATCH', '/api/users/me', { default_domain: value || null }));
      toast('Default domain saved');
    } catch (err) {
      setError(describeError(err));
    }
  };

  return (
    <form class="card" onSubmit={save} aria-labelledby="domain-title">
      <h2 id="domain-title">Default domain</h2>
      <p class="muted">Where your links point unless an upload says otherwise.</p>
      <label class="field">
        <span>Domain</span>
        <select value={value} onChange={(e) => setValue(e.currentTarget.value)} data-testid="default-domain">
          <option value="">The server’s first domain</option>
          {domains?.map((d) => (
            <option key={d.name} value={d.name}>
              {d.name}
            </option>
          ))}
        </select>
      </label>
      {error && <p class="alert" role="alert">{error}</p>}
      <button class="btn primary" type="submit" disabled={value === (me.default_domain ?? '')} data-testid="default-domain-save">
        Save
      </button>
    </form>
  );
}

function Password() {
  const { setMe, toast } = useApp();
  const [cur, setCur] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const save = async (e: Event) => {
    e.preventDefault();
    if (next !== again) {
      setError('The new passwords do not match.');
      return;
    }
    setError('');
    setBusy(true);
    try {
      // the server re-issues the session cookie with the new password
      setMe(await api<Profile>('PATCH', '/api/users/me', { current_password: cur, new_password: next }));
      setCur('');
      setNext('');
      setAgain('');
      toast('Password changed');
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card" onSubmit={save} aria-labelledby="password-title">
      <h2 id="password-title">Password</h2>
      <label class="field">
        <span>Current password</span>
        <input type="password" autoComplete="current-password" required value={cur} onInput={(e) => setCur(e.currentTarget.value)} data-testid="password-current" />
      </label>
      <label class="field">
        <span>New password</span>
        <input type="password" autoComplete="new-password" required minLength={8} maxLength={1024} value={next} onInput={(e) => setNext(e.currentTarget.value)} data-testid="password-new" />
      </label>
      <label class="field">
        <span>New password again</span>
        <input type="password" autoComplete="new-password" required minLength={8} value={again} onInput={(e) => setAgain(e.currentTarget.value)} data-testid="password-again" />
      </label>
      {error && <p class="alert" role="alert">{error}</p>}
      <button class="btn primary" type="submit" disabled={busy} data-testid="password-save">
        Change password
      </button>
    </form>
  );
}

function ApiKeys() {
  const { toast, confirm } = useApp();
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [name, setName] = useState('');
  const [created, setCreated] = useState<ApiKey | null>(null);
  const [error, setError] = useState('');

  const reload = () =>
    get<{ api_keys: ApiKey[] }>('/api/users/me/api-keys').then((r) => setKeys(r.api_keys), (e) => setError(describeError(e)));
  useEffect(() => {
    reload();
    // the tools card creates keys too
    addEventListener('bulletdrop:keys', reload);
    return () => removeEventListener('bulletdrop:keys', reload);
  }, []);

  const create = async (e: Event) => {
    e.preventDefault();
    setError('');
    try {
      const k = await api<ApiKey>('POST', '/api/users/me/api-keys', { name: name.trim() });
      setCreated(k);
      setName('');
      reload();
    } catch (err) {
      setError(describeError(err));
    }
  };

  const revoke = async (k: ApiKey) => {
    const ok = await confirm({
      title: `Revoke “${k.name}”?`,
      message: 'Anything using this key (ShareX, scripts) stops working at once.',
      ok: 'Revoke',
      danger: true,
    });
    if (!ok) return;
    try {
      await api('DELETE', `/api/users/me/api-keys/${k.id}`);
      if (created?.id === k.id) setCreated(null);
      setKeys((ks) => ks && ks.filter((x) => x.id !== k.id));
      toast(`Revoked ${k.name}`);
    } catch (err) {
      toast(`Could not revoke: ${describeError(err)}`, 'error');
    }
  };

  return (
    <section class="card" aria-labelledby="keys-title">
      <h2 id="keys-title">API keys</h2>
      <p class="muted">
        For uploaders and scripts: send <code>Authorization: Bearer &lt;key&gt;</code>. A key is shown once, when it is created.
      </p>
      <form class="inline-form" onSubmit={create}>
        <label class="field grow">
          <span>Name</span>
          <input required maxLength={64} placeholder="e.g. Laptop ShareX" value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="apikey-name" />
        </label>
        <button class="btn primary" type="submit" data-testid="apikey-create">
          <Icon name="key" size={16} /> <span>Create key</span>
        </button>
      </form>
      {error && <p class="alert" role="alert">{error}</p>}
      {created?.key && (
        <div class="secret" role="region" aria-label="New API key">
          <p>
            <strong>Copy your new key “{created.name}” now.</strong> It will not be shown again.
          </p>
          <div class="secret-row">
            <code data-testid="apikey-secret">{created.key}</code>
            <button type="button" class="btn small" onClick={() => copyText(created.key!).then(() => toast('Key copied'), () => toast('Could not copy the key', 'error'))} data-testid="apikey-copy">
              <Icon name="copy" size={14} /> <span>Copy</span>
            </button>
          </div>
          <button type="button" class="btn ghost small" onClick={() => setCreated(null)}>
            Done, hide it
          </button>
        </div>
      )}
      {keys && keys.length > 0 ? (
        <div class="table-wrap">
          <table class="stack">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col"><span class="visually-hidden">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.id} data-testid="apikey-row" data-id={k.id}>
                  <td><strong>{k.name}</strong></td>
                  <td data-label="Key"><code>{k.prefix}…</code></td>
                  <td data-label="Created">{dateTime(k.created_at)}</td>
                  <td data-label="Last used">{k.last_used_at ? dateTime(k.last_used_at) : <span class="muted">Never</span>}</td>
                  <td class="right">
                    <button type="button" class="btn danger-ghost small" onClick={() => revoke(k)} aria-label={`Revoke ${k.name}`} data-testid="apikey-revoke">
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        keys && <p class="muted">No keys yet.</p>
      )}
    </section>
  );
}

/** Fetches a generated file and hands it to the browser as a download. */
async function download(path: string, fallbackName: string) {
  const res = await fetch(path, { credentials: 'same-origin' });
  if (!res.ok) throw errorFrom(res.status, await res.text(), res.headers.get('Retry-After'));
  const cd = res.headers.get('Content-Disposition') || '';
  const name = /filename="([^"]+)"/.exec(cd)?.[1] || fallbackName;
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  dispatchEvent(new Event('bulletdrop:keys'));
}

function Tools() {
  const { toast } = useApp();
  const get = (path: string, name: string) =>
    download(path, name).then(
      () => toast(`Downloaded ${name}; it holds a new API key`),
      (e) => toast(`Download failed: ${describeError(e)}`, 'error'),
    );
  return (
    <section class="card" id="tools" aria-labelledby="tools-title">
      <h2 id="tools-title">Desktop uploaders</h2>
      <p class="muted">Each download holds a new API key of its own, which you can revoke above.</p>
      <div class="tools">
        <div class="tool">
          <h3>ShareX (Windows)</h3>
          <ol>
            <li>Download the custom uploader.</li>
            <li>Double-click <code>bulletdrop.sxcu</code>; ShareX asks to make it your uploader for images, text and files.</li>
            <li>Take a screenshot: the link is on your clipboard.</li>
          </ol>
          <button type="button" class="btn primary" onClick={() => get('/api/users/me/sharex?new_key=1', 'bulletdrop.sxcu')} data-testid="sharex-download">
            <Icon name="download" size={16} /> <span>Download .sxcu</span>
          </button>
        </div>
        <div class="tool">
          <h3>Flameshot (Linux)</h3>
          <ol>
            <li>Download the script and save it as <code>~/bin/bulletdrop-flameshot.sh</code>.</li>
            <li>
              Make it runnable: <code>chmod +x ~/bin/bulletdrop-flameshot.sh</code>
            </li>
            <li>Bind a keyboard shortcut (e.g. <kbd>Print</kbd>) to that script in your desktop’s settings.</li>
            <li>It needs <code>curl</code>, and <code>wl-copy</code>, <code>xclip</code> or <code>xsel</code> for the clipboard.</li>
          </ol>
          <button type="button" class="btn" onClick={() => get('/api/users/me/flameshot?new_key=1', 'bulletdrop-flameshot.sh')} data-testid="flameshot-download">
            <Icon name="download" size={16} /> <span>Download script</span>
          </button>
        </div>
      </div>
    </section>
  );
}
