// Administration: users, invites and file domains.
import { useEffect, useState } from 'preact/hooks';
import { api, describeError, get, type Domain, type Invite, type Profile } from '../api';
import { useApp } from '../app-context';
import { copyText } from '../clipboard';
import { Dialog } from '../components/Dialog';
import { bytes, dateTime, isExpired } from '../format';

export function Admin() {
  const { me } = useApp();
  if (me.role !== 'admin') {
    return (
      <section class="card empty" data-testid="not-allowed">
        <h1>Not allowed</h1>
        <p class="muted">This page is for administrators.</p>
      </section>
    );
  }
  return (
    <>
      <h1 class="page-title">Administration</h1>
      <Users />
      <Invites />
      <Domains />
    </>
  );
}

const MB = 1024 * 1024;
const GB = 1024 * MB;

function Users() {
  const { me, toast } = useApp();
  const [users, setUsers] = useState<Profile[]>([]);
  const [next, setNext] = useState<number | null>(0);
  const [error, setError] = useState('');
  const [quotaOf, setQuotaOf] = useState<Profile | null>(null);

  const load = async (after: number) => {
    try {
      const r = await get<{ users: Profile[]; next_after: number | null }>(`/api/admin/users?limit=50&after=${after}`);
      setUsers((old) => (after === 0 ? r.users : [...old, ...r.users]));
      setNext(r.next_after);
    } catch (e) {
      setError(describeError(e));
    }
  };
  useEffect(() => void load(0), []);

  const patch = async (u: Profile, body: Partial<Pick<Profile, 'disabled' | 'role' | 'quota_bytes'>>, said: string) => {
    try {
      const p = await api<Profile>('PATCH', `/api/admin/users/${u.id}`, body);
      setUsers((old) => old.map((x) => (x.id === p.id ? p : x)));
      toast(said);
      return true;
    } catch (e) {
      toast(describeError(e), 'error');
      return false;
    }
  };

  return (
    <section class="card" aria-labelledby="users-title">
      <h2 id="users-title">Users</h2>
      {error && <p class="alert" role="alert">{error}</p>}
      <div class="table-wrap">
        <table class="stack">
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Role</th>
              <th scope="col">Usage</th>
              <th scope="col">Quota</th>
              <th scope="col">Status</th>
              <th scope="col"><span class="visually-hidden">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {users.map((u) => {
              const self = u.id === me.id;
              return (
                <tr key={u.id} data-testid="admin-user-row" data-username={u.username}>
                  <td>
                    <strong>{u.username}</strong>
                    {self && <span class="pill">you</span>}
                    <div class="muted small-text">since {dateTime(u.created_at)}</div>
                  </td>
                  <td data-label="Role">
                    <label class="visually-hidden" for={`role-${u.id}`}>Role of {u.username}</label>
                    <select
                      id={`role-${u.id}`}
                      value={u.role}
                      disabled={self}
                      onChange={(e) => {
                        const role = e.currentTarget.value as Profile['role'];
                        const el = e.currentTarget;
                        patch(u, { role }, `${u.username} is now ${role === 'admin' ? 'an administrator' : 'a user'}`).then((ok) => {
                          if (!ok) el.value = u.role;
                        });
                      }}
                      data-testid="user-role"
                    >
                      <option value="user">User</option>
                      <option value="admin">Admin</option>
                    </select>
                  </td>
                  <td data-label="Usage">
                    <span>
                      {bytes(u.usage.bytes)}
                      <span class="muted small-text"> · {u.usage.files} {u.usage.files === 1 ? 'file' : 'files'}</span>
                    </span>
                  </td>
                  <td data-label="Quota">
                    <button type="button" class="btn ghost small" onClick={() => setQuotaOf(u)} aria-label={`Quota of ${u.username}`} data-testid="user-quota">
                      {u.quota_bytes == null ? 'None' : bytes(u.quota_bytes)}
                    </button>
                  </td>
                  <td data-label="Status">{u.disabled ? <span class="pill bad">Disabled</span> : <span class="pill good">Active</span>}</td>
                  <td class="right">
                    {u.disabled ? (
                      <button type="button" class="btn small" onClick={() => patch(u, { disabled: false }, `${u.username} enabled`)} data-testid="user-enable">
                        Enable
                      </button>
                    ) : (
                      <button type="button" class="btn danger-ghost small" disabled={self} onClick={() => patch(u, { disabled: true }, `${u.username} disabled`)} data-testid="user-disable">
                        Disable
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {next != null && next !== 0 && (
        <button type="button" class="btn" onClick={() => load(next)} data-testid="users-more">
          Load more users
        </button>
      )}
      {quotaOf && (
        <QuotaDialog
          u={quotaOf}
          onClose={() => setQuotaOf(null)}
          onSave={(q) => patch(quotaOf, { quota_bytes: q }, `Quota of ${quotaOf.username} saved`).then((ok) => ok && setQuotaOf(null))}
        />
      )}
    </section>
  );
}

function QuotaDialog({ u, onClose, onSave }: { u: Profile; onClose: () => void; onSave: (q: number | null) => void }) {
  const q = u.quota_bytes;
  const unitOf = q != null && q % GB === 0 ? GB : MB;
  const [amount, setAmount] = useState(q == null ? '' : String(+(q / unitOf).toFixed(2)));
  const [unit, setUnit] = useState(unitOf);
  const submit = (e: Event) => {
    e.preventDefault();
    const v = amount.trim();
    onSave(v === '' ? null : Math.round(Number(v) * unit));
  };
  return (
    <Dialog title={`Quota of ${u.username}`} onClose={onClose} testid="quota-dialog">
      <form onSubmit={submit}>
        <p class="muted">Leave empty for no quota. Uses {bytes(u.usage.bytes)} now.</p>
        <div class="inline-form">
          <label class="field grow">
            <span>Quota</span>
            <input type="number" min={0} step="any" placeholder="No quota" value={amount} onInput={(e) => setAmount(e.currentTarget.value)} data-testid="quota-amount" autoFocus />
          </label>
          <label class="field">
            <span>Unit</span>
            <select value={unit} onChange={(e) => setUnit(Number(e.currentTarget.value))} data-testid="quota-unit">
              <option value={MB}>MB</option>
              <option value={GB}>GB</option>
            </select>
          </label>
        </div>
        <div class="actions">
          <button type="button" class="btn" onClick={() => onSave(null)}>
            Remove quota
          </button>
          <button type="submit" class="btn primary" data-testid="quota-save">
            Save
          </button>
        </div>
      </form>
    </Dialog>
  );
}

const INVITE_TTL: [number, string][] = [
  [3600, '1 hour'],
  [86400, '1 day'],
  [7 * 86400, '7 days'],
  [30 * 86400, '30 days'],
];

function Invites() {
  const { toast, confirm } = useApp();
  const [list, setList] = useState<Invite[] | null>(null);
  const [ttl, setTtl] = useState(7 * 86400);
  const [created, setCreated] = useState<Invite | null>(null);
  const [error, setError] = useState('');

  const reload = () => get<{ invites: Invite[] }>('/api/admin/invites').then((r) => setList(r.invites), (e) => setError(describeError(e)));
  useEffect(() => void reload(), []);

  const create = async (e: Event) => {
    e.preventDefault();
    setError('');
    try {
      setCreated(await api<Invite>('POST', '/api/admin/invites', { expires_in: ttl }));
      reload();
    } catch (err) {
      setError(describeError(err));
    }
  };

  const revoke = async (i: Invite) => {
    if (!(await confirm({ title: 'Revoke this invite?', message: 'Its code stops working at once.', ok: 'Revoke', danger: true }))) return;
    try {
      await api('DELETE', `/api/admin/invites/${i.id}`);
      setList((l) => l && l.filter((x) => x.id !== i.id));
      toast('Invite revoked');
    } catch (err) {
      toast(describeError(err), 'error');
    }
  };

  const link = created?.code ? `${location.origin}/register?invite=${encodeURIComponent(created.code)}` : '';
  const copy = (t: string, what: string) => copyText(t).then(() => toast(`${what} copied`), () => toast('Could not copy', 'error'));

  return (
    <section class="card" aria-labelledby="invites-title">
      <h2 id="invites-title">Invites</h2>
      <form class="inline-form" onSubmit={create}>
        <label class="field">
          <span>Valid for</span>
          <select value={ttl} onChange={(e) => setTtl(Number(e.currentTarget.value))} data-testid="invite-expiry">
            {INVITE_TTL.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="btn primary" data-testid="invite-create">
          Create invite
        </button>
      </form>
      {error && <p class="alert" role="alert">{error}</p>}
      {created?.code && (
        <div class="secret" role="region" aria-label="New invite">
          <p>
            <strong>Send this invite now.</strong> The code is shown once; it works once, until {dateTime(created.expires_at)}.
          </p>
          <div class="secret-row">
            <code data-testid="invite-code">{created.code}</code>
            <button type="button" class="btn small" onClick={() => copy(created.code!, 'Code')}>Copy code</button>
          </div>
          <div class="secret-row">
            <code data-testid="invite-link">{link}</code>
            <button type="button" class="btn small" onClick={() => copy(link, 'Link')} data-testid="invite-copy-link">Copy link</button>
          </div>
        </div>
      )}
      {list && list.length > 0 && (
        <div class="table-wrap">
          <table class="stack">
            <thead>
              <tr>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">By</th>
                <th scope="col">Used by</th>
                <th scope="col"><span class="visually-hidden">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {list.map((i) => (
                <tr key={i.id} data-testid="invite-row" data-id={i.id}>
                  <td data-label="Created">{dateTime(i.created_at)}</td>
                  <td data-label="Expires">
                    {dateTime(i.expires_at)} {isExpired(i.expires_at) && <span class="pill bad">expired</span>}
                  </td>
                  <td data-label="By">{i.created_by ?? <span class="muted">—</span>}</td>
                  <td data-label="Used by">{i.used_by ?? <span class="muted">Unused</span>}</td>
                  <td class="right">
                    {!i.used_by && (
                      <button type="button" class="btn danger-ghost small" onClick={() => revoke(i)} data-testid="invite-revoke">
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {list && list.length === 0 && <p class="muted">No invites yet.</p>}
    </section>
  );
}

function Domains() {
  const { config, toast, confirm } = useApp();
  const [list, setList] = useState<Domain[] | null>(null);
  const [name, setName] = useState('');
  const [error, setError] = useState('');

  const reload = () => get<{ domains: Domain[] }>('/api/domains?all=true').then((r) => setList(r.domains), (e) => setError(describeError(e)));
  useEffect(() => void reload(), []);

  const act = async (f: () => Promise<unknown>, said: string) => {
    setError('');
    try {
      await f();
      toast(said);
      reload();
      return true;
    } catch (e) {
      setError(describeError(e));
      return false;
    }
  };

  const add = async (e: Event) => {
    e.preventDefault();
    const n = name.trim().toLowerCase();
    if (await act(() => api('POST', '/api/domains', { name: n }), `Added ${n}`)) setName('');
  };

  const remove = async (d: Domain) => {
    const ok = await confirm({
      title: `Delete ${d.name}?`,
      message: 'Every link on this domain stops working, and users who had it as their default fall back to the first domain.',
      ok: 'Delete',
      danger: true,
    });
    if (ok) act(() => api('DELETE', `/api/domains/${encodeURIComponent(d.name)}`), `Deleted ${d.name}`);
  };

  return (
    <section class="card" aria-labelledby="domains-title">
      <h2 id="domains-title">File domains</h2>
      <p class="muted">Links are served on these host names; point their DNS at this server.</p>
      <div class="inline-form">
        <form class="inline-form grow" onSubmit={add}>
          <label class="field grow">
            <span>New domain</span>
            <input required placeholder="i.example.net" value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="domain-name" />
          </label>
          <button type="submit" class="btn primary" data-testid="domain-add">
            Add
          </button>
        </form>
        {config.base_domain && (
          <button
            type="button"
            class="btn"
            title={`Adds img., shots., cdn. and media.${config.base_domain}`}
            onClick={() => act(() => api('POST', '/api/domains/seed'), 'Seeded the default domains')}
            data-testid="domain-seed"
          >
            Seed {`*.${config.base_domain}`}
          </button>
        )}
      </div>
      {error && <p class="alert" role="alert">{error}</p>}
      {list && list.length > 0 ? (
        <ul class="rows">
          {list.map((d) => (
            <li key={d.name} class="row" data-testid="domain-row" data-name={d.name}>
              <span class="grow">
                <strong>{d.name}</strong>
                <span class="muted small-text"> added {dateTime(d.created_at)}</span>
              </span>
              {d.enabled ? <span class="pill good">Enabled</span> : <span class="pill bad">Disabled</span>}
              <button
                type="button"
                class="btn small"
                onClick={() => act(() => api('PATCH', `/api/domains/${encodeURIComponent(d.name)}`, { enabled: !d.enabled }), `${d.name} ${d.enabled ? 'disabled' : 'enabled'}`)}
                data-testid="domain-toggle"
              >
                {d.enabled ? 'Disable' : 'Enable'}
              </button>
              <button type="button" class="btn danger-ghost small" onClick={() => remove(d)} aria-label={`Delete ${d.name}`} data-testid="domain-delete">
                Delete
              </button>
            </li>
          ))}
        </ul>
      ) : (
        list && <p class="muted">No domains: links point at this server’s own host name.</p>
      )}
    </section>
  );
}
