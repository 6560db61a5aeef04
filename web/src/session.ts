// Who is signed in: the session the server keeps in an HttpOnly cookie, as the app knows it from `/api/auth/me` and
// the sign-in answer (account, roles, groups, organisation, and the CSRF token every write must carry). Pure helpers
// decide what the account may do in the app (edit scenarios, see its datasets' usage, the audit log); the server
// decides for real.

import {
  getMe,
  login,
  logout,
  register,
  setCsrfToken,
  type AuthAnswer,
  type Dataset,
} from './api';

/** The signed-in account, as the app uses it. */
export interface Session {
  /** The account id. */
  id: string;
  displayName?: string;
  roles: string[];
  groups: string[];
  organisation?: string;
  /** How it signed in: `session` for the dialog's sign-in. */
  method: string;
  csrfToken?: string;
}

/** The roles from the most to the least powerful (the order the server lists them in). */
export const ROLES = ['admin', 'data_owner', 'planner', 'moderator', 'citizen', 'device'] as const;

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : undefined;
}

/** A role as the server spells it (`DataOwner`, `data-owner` → `data_owner`). */
export function normRole(r: string): string {
  const n = r.trim().toLowerCase().replace(/[-_]/g, '');
  return n === 'dataowner' ? 'data_owner' : n;
}

/** The session in an answer of `/api/auth/me`, `/login` or `/register`; undefined when it is anonymous. */
export function parseAuthAnswer(body: unknown): Session | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const b = body as AuthAnswer;
  const p = b.principal && typeof b.principal === 'object' ? b.principal : undefined;
  const a = b.account && typeof b.account === 'object' ? b.account : undefined;
  const id = str(p?.subject) ?? str(a?.id);
  if (!id) return undefined;
  const roles = [...new Set(strings(p?.roles ?? a?.roles).map(normRole))];
  return {
    id,
    displayName: str(a?.displayName),
    roles: [...ROLES.filter((r) => roles.includes(r)), ...roles.filter((r) => !(ROLES as readonly string[]).includes(r))],
    groups: strings(p?.groups ?? a?.groups),
    organisation: str(p?.organisation) ?? str(a?.organisation),
    method: str(p?.method?.kind) ?? 'session',
    csrfToken: str(b.csrfToken),
  };
}

/** The account's most powerful role (its label in the header), or undefined without any. */
export function mainRole(s: Session | undefined): string | undefined {
  return s?.roles[0];
}

export function isAdmin(s: Session | undefined): boolean {
  return !!s?.roles.includes('admin');
}

/** Whether the account may create, save and run scenarios: signed in with a role other than device alone. */
export function canEditScenarios(s: Session | undefined): boolean {
  return !!s && s.roles.some((r) => r !== 'device');
}

/** Whether the account sees the "My data" panel: data owners and administrators. */
export function seesOwnData(s: Session | undefined): boolean {
  return !!s && (s.roles.includes('admin') || s.roles.includes('data_owner'));
}

/** Whether the account manages the dataset (its usage log is theirs): an administrator, or its owner being the
 * account, its organisation or one of its groups. */
export function managesDataset(s: Session | undefined, d: Pick<Dataset, 'owner'>): boolean {
  if (!s) return false;
  if (isAdmin(s)) return true;
  return d.owner === s.id || (!!s.organisation && d.owner === s.organisation) || s.groups.includes(d.owner);
}

/** Why a sign-up failed, as a message key: 403 and 404 mean the twin takes no sign-ups. */
export function signUpRefusal(status: number): 'closed' | 'other' {
  return status === 403 || status === 404 || status === 405 ? 'closed' : 'other';
}

/** The session as the app holds it, with listeners; the API client gets the CSRF token. */
export class SessionState {
  private session: Session | undefined;
  private readonly listeners = new Set<(s: Session | undefined) => void>();

  get current(): Session | undefined {
    return this.session;
  }

  onChange(f: (s: Session | undefined) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  set(s: Session | undefined): void {
    this.session = s;
    setCsrfToken(s?.csrfToken);
    for (const f of this.listeners) f(s);
  }

  /** Restores the session of the cookie (on load). A dead session (401) leaves the app anonymous. */
  async restore(): Promise<Session | undefined> {
    try {
      this.set(parseAuthAnswer(await getMe()));
    } catch {
      this.set(undefined);
    }
    return this.session;
  }

  async signIn(id: string, password: string): Promise<Session> {
    const s = parseAuthAnswer(await login(id, password));
    if (!s) throw new Error('the sign-in answer names no account');
    // the answer has the CSRF token; `/api/auth/me` gives it too, should a server leave it out
    if (!s.csrfToken) s.csrfToken = parseAuthAnswer(await getMe().catch(() => ({})))?.csrfToken;
    this.set(s);
    return s;
  }

  async register(id: string, password: string): Promise<Session> {
    const s = parseAuthAnswer(await register(id, password));
    if (!s) throw new Error('the sign-up answer names no account');
    if (!s.csrfToken) s.csrfToken = parseAuthAnswer(await getMe().catch(() => ({})))?.csrfToken;
    this.set(s);
    return s;
  }

  /** Ends the session on the server; the app is anonymous afterwards even when the server had ended it already. */
  async signOut(): Promise<void> {
    try {
      await logout();
    } finally {
      this.set(undefined);
    }
  }
}
