// Sign in and register. Both end by signing in with a cookie session and
// handing the profile to App.
import { useState } from 'preact/hooks';
import { api, ApiError, describeError, waitText, type Config, type Profile } from '../api';
import { Logo } from '../components/Icons';
import { onLinkClick, useLocation } from '../router';

interface Props {
  config: Config;
  onDone: (p: Profile) => void;
}

async function signIn(username: string, password: string): Promise<Profile> {
  await api('POST', '/api/auth/login', { username, password, session: true }, { quiet401: true });
  return api<Profile>('GET', '/api/users/me', undefined, { quiet401: true });
}

/** The error of a sign-in, and for a 429 how long to wait. */
function loginError(e: unknown): string {
  if (e instanceof ApiError && e.code === 'too_many_attempts') {
    return `Too many attempts. ${e.retryAfter != null ? `Wait ${waitText(e.retryAfter)} and try again.` : 'Wait a while and try again.'}`;
  }
  return describeError(e);
}

function Brand() {
  return (
    <div class="auth-brand">
      <Logo />
      <span>BulletDrop</span>
    </div>
  );
}

export function Login({ config, notice, onDone }: Props & { notice: string }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const { query } = useLocation();

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      onDone(await signIn(username.trim(), password));
    } catch (err) {
      setError(loginError(err));
      setBusy(false);
    }
  };

  const next = query.get('next');
  return (
    <div class="auth">
      <Brand />
      <form class="card auth-card" onSubmit={submit} data-testid="login-form">
        <h1>Sign in</h1>
        {notice && !error && (
          <p class="notice" role="status" data-testid="login-notice">
            {notice}
          </p>
        )}
        {error && (
          <p class="alert" role="alert" data-testid="login-error">
            {error}
          </p>
        )}
        <label class="field">
          <span>User name</span>
          <input
            name="username"
            autoComplete="username"
            required
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
            data-testid="login-username"
            autoFocus
          />
        </label>
        <label class="field">
          <span>Password</span>
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
            data-testid="login-password"
          />
        </label>
        <button class="btn primary block" type="submit" disabled={busy} data-testid="login-submit">
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {config.registration !== 'closed' && (
          <p class="muted center">
            New here?{' '}
            <a href={next ? `/register?next=${encodeURIComponent(next)}` : '/register'} onClick={onLinkClick} data-testid="register-link">
              Create an account
            </a>
          </p>
        )}
      </form>
    </div>
  );
}

export function Register({ config, onDone }: Props) {
  const { query } = useLocation();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [invite, setInvite] = useState(query.get('invite') ?? '');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const needInvite = config.registration === 'invite';

  if (config.registration === 'closed') {
    return (
      <div class="auth">
        <Brand />
        <div class="card auth-card" data-testid="register-closed">
          <h1>Registration is closed</h1>
          <p class="muted">This server does not take new accounts. Ask its administrator for one.</p>
          <a class="btn block" href="/login" onClick={onLinkClick}>
            Back to sign in
          </a>
        </div>
      </div>
    );
  }

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    const body: Record<string, string> = { username: username.trim(), password };
    if (invite.trim()) body.invite = invite.trim();
    try {
      await api('POST', '/api/auth/register', body, { quiet401: true });
    } catch (err) {
      setError(loginError(err));
      setBusy(false);
      return;
    }
    try {
      onDone(await signIn(body.username, password));
    } catch (err) {
      setError(`Your account was created, but signing in failed: ${loginError(err)}`);
      setBusy(false);
    }
  };

  return (
    <div class="auth">
      <Brand />
      <form class="card auth-card" onSubmit={submit} data-testid="register-form">
        <h1>Create an account</h1>
        {needInvite && <p class="muted">This server takes new accounts by invitation.</p>}
        {error && (
          <p class="alert" role="alert" data-testid="register-error">
            {error}
          </p>
        )}
        <label class="field">
          <span>User name</span>
          <input
            name="username"
            autoComplete="username"
            required
            minLength={3}
            maxLength={32}
            pattern="[A-Za-z0-9_.\-]{3,32}"
            title="3 to 32 letters, digits, _ . or -"
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
            data-testid="register-username"
            autoFocus
          />
          <small class="hint">3–32 letters, digits, “_”, “.” or “-”.</small>
        </label>
        <label class="field">
          <span>Password</span>
          <input
            name="password"
            type="password"
            autoComplete="new-password"
            required
            minLength={8}
            maxLength={1024}
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
            data-testid="register-password"
          />
          <small class="hint">At least 8 characters.</small>
        </label>
        {needInvite && (
          <label class="field">
            <span>Invite code</span>
            <input
              name="invite"
              required
              autoComplete="off"
              value={invite}
              onInput={(e) => setInvite(e.currentTarget.value)}
              data-testid="register-invite"
            />
          </label>
        )}
        <button class="btn primary block" type="submit" disabled={busy} data-testid="register-submit">
          {busy ? 'Creating…' : 'Create account'}
        </button>
        <p class="muted center">
          Have an account?{' '}
          <a href="/login" onClick={onLinkClick} data-testid="login-link">
            Sign in
          </a>
        </p>
      </form>
    </div>
  );
}
