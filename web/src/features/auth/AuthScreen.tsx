import { useState, type FormEvent } from 'react';
import { ApiError, describeError, fieldErrors } from '../../lib/errors';
import { api } from '../../services';
import { Button } from '../ui/Button';
import { Field } from '../ui/Field';

type Mode = 'login' | 'register';
type Errors = Partial<Record<'username' | 'email' | 'password' | 'form', string>>;

const USERNAME = /^[A-Za-z0-9_.-]{3,32}$/;

/** Checks what the contract's limits allow before asking the server, which has the final word. */
function validate(mode: Mode, username: string, email: string, password: string): Errors {
  const errors: Errors = {};
  if (mode === 'register') {
    if (!USERNAME.test(username)) errors.username = '3–32 characters: letters, digits, _ . -';
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) errors.email = 'Enter a valid email address.';
    if (password.length < 8) errors.password = 'At least 8 characters.';
  } else {
    if (!username) errors.username = 'Enter your username.';
    if (!password) errors.password = 'Enter your password.';
  }
  return errors;
}

export function AuthScreen() {
  const [mode, setMode] = useState<Mode>('login');
  const [username, setUsername] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const local = validate(mode, username.trim(), email.trim(), password);
    setErrors(local);
    if (Object.keys(local).length) return;
    setBusy(true);
    try {
      if (mode === 'login') await api.login(username.trim(), password);
      else await api.register(username.trim(), email.trim(), password);
    } catch (err) {
      const fields = err instanceof ApiError ? fieldErrors(err, ['username', 'email', 'password']) : {};
      if (Object.keys(fields).length) {
        // The form-level message would repeat a single field's error.
        setErrors({ ...fields, form: err instanceof ApiError && err.code === 'validation_failed' ? err.message : undefined });
      } else {
        setErrors({ form: describeError(err) });
      }
      setBusy(false);
    }
  }

  function switchMode(next: Mode) {
    setMode(next);
    setErrors({});
  }

  return (
    <main className="flex min-h-full items-center justify-center bg-surface p-4">
      <div className="w-full max-w-sm rounded-xl border border-line bg-bg p-6 shadow-sm">
        <h1 className="mb-1 text-2xl font-bold">Banter</h1>
        <p className="mb-5 text-sm text-muted">{mode === 'login' ? 'Sign in to your team chat.' : 'Create your account.'}</p>
        <div role="tablist" aria-label="Sign in or register" className="mb-4 grid grid-cols-2 gap-1 rounded-md bg-surface-2 p-1">
          {(['login', 'register'] as const).map((m) => (
            <button
              key={m}
              role="tab"
              type="button"
              aria-selected={mode === m}
              onClick={() => switchMode(m)}
              className={`rounded px-2 py-1 text-sm font-medium ${mode === m ? 'bg-bg shadow-sm' : 'text-muted'}`}
            >
              {m === 'login' ? 'Sign in' : 'Register'}
            </button>
          ))}
        </div>
        <form onSubmit={submit} noValidate className="flex flex-col gap-3" aria-label={mode === 'login' ? 'Sign in' : 'Register'}>
          <Field
            label="Username"
            name="username"
            autoComplete="username"
            autoCapitalize="none"
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            error={errors.username}
            required
          />
          {mode === 'register' && (
            <Field
              label="Email"
              name="email"
              type="email"
              autoComplete="email"
              value={email}
              onChange={(e) => setEmail(e.target.value)}
              error={errors.email}
              required
            />
          )}
          <Field
            label="Password"
            name="password"
            type="password"
            autoComplete={mode === 'login' ? 'current-password' : 'new-password'}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            error={errors.password}
            hint={mode === 'register' ? 'At least 8 characters.' : undefined}
            required
          />
          {errors.form && (
            <p role="alert" className="rounded-md bg-surface-2 px-3 py-2 text-sm text-danger">
              {errors.form}
            </p>
          )}
          <Button type="submit" variant="primary" disabled={busy} className="mt-1 py-2">
            {busy ? 'Please wait…' : mode === 'login' ? 'Sign in' : 'Create account'}
          </Button>
        </form>
      </div>
    </main>
  );
}
