// The shell: loads the config and the signed-in user, routes, and owns the
// toast, the confirm dialog and the page-wide drop and paste handlers.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, describeError, get, setUnauthorizedHandler, type Config, type Profile } from './api';
import { AppCtx, useApp as useAppState, type AppState, type ConfirmOptions } from './app-context';
import { copyText } from './clipboard';
import { Dialog } from './components/Dialog';
import { Icon, Logo } from './components/Icons';
import { navigate, onLinkClick, useLocation } from './router';
import { addFiles, getCopyOnDone, getOptions, onUploaded, setOptions, setProfileSource, setUploadUnauthorized } from './uploads';
import { Login, Register } from './pages/Auth';
import { Files, prefetchFiles } from './pages/Files';
import { Settings } from './pages/Settings';
import { Admin } from './pages/Admin';

const SIGNED_OUT_PAGES = ['/login', '/register'];

interface ToastAction {
  label: string;
  run: () => void;
}

interface Toast {
  text: string;
  kind: 'ok' | 'error';
  action?: ToastAction;
  n: number;
}

interface Pending extends ConfirmOptions {
  resolve: (ok: boolean) => void;
}

export function App() {
  const [config, setConfig] = useState<Config | null>(null);
  const [fatal, setFatal] = useState('');
  // undefined: not known yet; null: signed out
  const [me, setMe] = useState<Profile | null | undefined>(undefined);
  const [notice, setNotice] = useState('');
  const [toast, setToast] = useState<Toast | null>(null);
  const [pending, setPending] = useState<Pending | null>(null);
  const loc = useLocation();

  // Any 401 (or a disabled account) ends the session: sign in again, and
  // come back to the page the user was on.
  const signedOut = useCallback((e: ApiError) => {
    setMe(null);
    // keep "disabled" over a 401 that races it
    setNotice((old) => (e.code === 'account_disabled' ? describeError(e) : me ? 'Your session has ended. Please sign in again.' : old));
    if (!SIGNED_OUT_PAGES.includes(location.pathname)) {
      const here = location.pathname + location.search;
      navigate(here === '/' ? '/login' : `/login?next=${encodeURIComponent(here)}`, true);
    }
  }, [me]);
  setUnauthorizedHandler(signedOut);
  setUploadUnauthorized(signedOut);
  setProfileSource(() => me ?? null);

  const boot = useCallback(() => {
    setFatal('');
    if (location.pathname === '/' || location.pathname === '/files') prefetchFiles();
    get<Config>('/api/config')
      .then(setConfig)
      .catch((e) => setFatal(describeError(e)));
    get<Profile>('/api/users/me')
      .then(setMe)
      .catch((e) => {
        if (!(e instanceof ApiError) || (e.status !== 401 && e.status !== 403)) setFatal(describeError(e));
      });
  }, []);
  useEffect(boot, []);

  const timer = useRef<number>();
  const showToast = useCallback((text: string, kind: 'ok' | 'error' = 'ok', action?: ToastAction) => {
    setToast((t) => ({ text, kind, action, n: (t?.n ?? 0) + 1 }));
    clearTimeout(timer.current);
    // one with a button stays long enough to be reached
    timer.current = window.setTimeout(() => setToast(null), action ? 12000 : kind === 'error' ? 6000 : 3500);
  }, []);

  const refreshMe = useCallback(() => {
    get<Profile>('/api/users/me').then(setMe, () => {});
  }, []);

  // A finished upload: copy its link if the user wants that, and re-read the
  // usage figures.
  useEffect(
    () =>
      onUploaded((u) => {
        refreshMe();
        if (!getCopyOnDone()) return;
        const offer: ToastAction = {
          label: 'Copy link',
          run: () =>
            copyText(u.url).then(
              () => showToast('Link copied'),
              () => showToast('The browser did not let the link be copied; it is in the list below.', 'error'),
            ),
        };
        // A browser lets a page write the clipboard while the user's last
        // gesture (the paste, the drop, the click) is fresh; past that it
        // asks for a permission. Rather than a prompt, a button.
        if (navigator.userActivation && !navigator.userActivation.isActive) {
          showToast(`${u.name} is uploaded.`, 'ok', offer);
          return;
        }
        copyText(u.url).then(
          () => showToast('Link copied'),
          () => showToast(`${u.name} is uploaded.`, 'ok', offer),
        );
      }),
    [],
  );

  const signOut = useCallback(() => {
    // the next person on this browser starts with plain uploads
    setOptions({ ...getOptions(), expires: 'never', maxViews: '' });
    api('POST', '/api/auth/logout').catch(() => {}).finally(() => {
      setMe(null);
      setNotice('You have signed out.');
      navigate('/login');
    });
  }, []);

  const state = useMemo<AppState | null>(
    () =>
      config && me
        ? {
            config,
            me,
            setMe,
            refreshMe,
            toast: showToast,
            confirm: (o) => new Promise<boolean>((resolve) => setPending({ ...o, resolve })),
            signOut,
          }
        : null,
    [config, me],
  );

  // The route, settled against whether anyone is signed in.
  const path = loc.path;
  useEffect(() => {
    if (me === null && !SIGNED_OUT_PAGES.includes(path)) {
      navigate(path === '/' ? '/login' : `/login?next=${encodeURIComponent(path + location.search)}`, true);
    } else if (me && SIGNED_OUT_PAGES.includes(path)) {
      navigate(safeNext(loc.query.get('next')), true);
    }
  }, [me, path]);

  let body: ComponentChildren;
  if (fatal) {
    body = (
      <Centered>
        <div class="card auth-card" role="alert">
          <h1>Cannot reach BulletDrop</h1>
          <p class="muted">{fatal}</p>
          <button class="btn primary" onClick={boot}>
            Try again
          </button>
        </div>
      </Centered>
    );
  } else if (!config || me === undefined) {
    body = <Centered><div class="spinner" aria-label="Loading" role="status" /></Centered>;
  } else if (!me) {
    const done = (p: Profile) => {
      setNotice('');
      setMe(p);
    };
    body = (
      <Centered>
        {path === '/register' ? (
          <Register config={config} onDone={done} />
        ) : (
          <Login config={config} notice={notice} onDone={done} />
        )}
      </Centered>
    );
  } else if (state) {
    body = (
      <AppCtx.Provider value={state}>
        <Shell path={path}>
          {path === '/' || path === '/files' ? (
            <Files />
          ) : path === '/settings' ? (
            <Settings />
          ) : path === '/admin' ? (
            <Admin />
          ) : (
            <section class="card empty">
              <h1>Page not found</h1>
              <p>
                <a href="/" onClick={onLinkClick}>
                  Back to your files
                </a>
              </p>
            </section>
          )}
        </Shell>
        <DropAndPaste config={config} />
      </AppCtx.Provider>
    );
  }

  return (
    <>
      {body}
      {/* not while booting: it would jump from the bottom of the viewport
          to below the page as the page arrives */}
      {(fatal || (config && me !== undefined)) && (
        <footer class="footer">
          <span>BulletDrop</span>
          {config && <span class="muted"> v{config.version}</span>}
        </footer>
      )}
      <div class={`toast ${toast ? 'show ' + toast.kind : ''}`} role="status" aria-live="polite" data-testid="toast">
        {toast && (
          <>
            <Icon name={toast.kind === 'ok' ? 'check' : 'x'} />
            <span key={toast.n}>{toast.text}</span>
            {toast.action && (
              <button type="button" class="toast-action" onClick={() => toast.action!.run()} data-testid="toast-action">
                {toast.action.label}
              </button>
            )}
          </>
        )}
      </div>
      {pending && (
        <Dialog
          title={pending.title}
          testid="confirm-dialog"
          onClose={() => {
            pending.resolve(false);
            setPending(null);
          }}
        >
          {pending.message && <p>{pending.message}</p>}
          <div class="actions">
            <button
              type="button"
              class="btn"
              data-testid="confirm-cancel"
              onClick={() => {
                pending.resolve(false);
                setPending(null);
              }}
            >
              Cancel
            </button>
            <button
              type="button"
              class={pending.danger ? 'btn danger' : 'btn primary'}
              data-testid="confirm-ok"
              onClick={() => {
                pending.resolve(true);
                setPending(null);
              }}
            >
              {pending.ok}
            </button>
          </div>
        </Dialog>
      )}
    </>
  );
}

/** Only a path on this site: "?next=//evil.example" must not leave it. */
function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
}

function Centered({ children }: { children: ComponentChildren }) {
  return (
    <main class="centered" id="main">
      {children}
    </main>
  );
}

function Shell({ path, children }: { path: string; children: ComponentChildren }) {
  const { me, signOut } = useAppState();
  const item = (href: string, label: string, testid: string, active: boolean) => (
    <a href={href} onClick={onLinkClick} data-testid={testid} class={active ? 'active' : ''} aria-current={active ? 'page' : undefined}>
      {label}
    </a>
  );
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <div class="topbar-inner">
          <a class="brand" href="/" onClick={onLinkClick} aria-label="BulletDrop, my files">
            <Logo />
            <span>BulletDrop</span>
          </a>
          <nav aria-label="Main">
            {item('/', 'Files', 'nav-files', path === '/' || path === '/files')}
            {item('/settings', 'Settings', 'nav-settings', path === '/settings')}
            {me.role === 'admin' && item('/admin', 'Admin', 'nav-admin', path === '/admin')}
          </nav>
          <div class="who">
            <span class="avatar" aria-hidden="true">
              {me.username.slice(0, 1).toUpperCase()}
            </span>
            <span class="who-name">{me.username}</span>
            <button type="button" class="btn ghost small" onClick={signOut} data-testid="signout">
              <Icon name="out" size={16} />
              <span>Sign out</span>
            </button>
          </div>
        </div>
      </header>
      <main class="page" id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}

/** Files dropped anywhere on the page, or pasted, are uploaded. */
function DropAndPaste({ config }: { config: Config }) {
  const [over, setOver] = useState(false);
  const depth = useRef(0);

  useEffect(() => {
    const hasFiles = (e: DragEvent) => !!e.dataTransfer && Array.from(e.dataTransfer.types).includes('Files');
    const start = (files: File[]) => {
      if (!files.length) return;
      addFiles(files, config);
      if (location.pathname !== '/' && location.pathname !== '/files') navigate('/');
    };
    const enter = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth.current++;
      setOver(true);
    };
    const overFn = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer!.dropEffect = 'copy';
    };
    // dragenter/leave fire for every child crossed: count them
    const leave = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      depth.current = Math.max(0, depth.current - 1);
      if (depth.current === 0) setOver(false);
    };
    const drop = (e: DragEvent) => {
      depth.current = 0;
      setOver(false);
      if (!e.dataTransfer || !e.dataTransfer.files.length) return;
      e.preventDefault();
      start(Array.from(e.dataTransfer.files));
    };
    const paste = (e: ClipboardEvent) => {
      const data = e.clipboardData;
      if (!data) return;
      let files = Array.from(data.files);
      if (!files.length) {
        files = Array.from(data.items)
          .filter((i) => i.kind === 'file')
          .map((i) => i.getAsFile())
          .filter((f): f is File => !!f);
      }
      // text pasted into a field stays text
      if (!files.length) return;
      e.preventDefault();
      start(files);
    };
    addEventListener('dragenter', enter);
    addEventListener('dragover', overFn);
    addEventListener('dragleave', leave);
    addEventListener('drop', drop);
    document.addEventListener('paste', paste);
    return () => {
      removeEventListener('dragenter', enter);
      removeEventListener('dragover', overFn);
      removeEventListener('dragleave', leave);
      removeEventListener('drop', drop);
      document.removeEventListener('paste', paste);
    };
  }, [config]);

  return (
    <div class={over ? 'drop-overlay show' : 'drop-overlay'} aria-hidden={!over} data-testid="drop-overlay">
      <div class="drop-box">
        <Icon name="upload" size={40} />
        <p>Drop to upload</p>
      </div>
    </div>
  );
}
