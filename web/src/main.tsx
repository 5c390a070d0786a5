/** The Berth portal: layout, navigation and the page for each path. */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { currentSession, knownSession, listApps, logInWithCode, logInWithPassword, logOut, message, setKnownSession, signOnHref, signOnOptions, watchSession, type SessionView } from './api.ts';
import { Link, navigate, useLocation } from './router.tsx';
import { Loading, Page, useData } from './ui.tsx';
import { Home } from './pages/home.tsx';
import { AppPage } from './pages/app.tsx';
import { Releases } from './pages/releases.tsx';
import { Logs } from './pages/logs.tsx';
import { Metrics } from './pages/metrics.tsx';
import { Graph } from './pages/graph.tsx';
import { Events } from './pages/events.tsx';
import { Alerts } from './pages/alerts.tsx';
import { Images } from './pages/images.tsx';
import { Builds, BuildPage } from './pages/builds.tsx';
import { Config } from './pages/config.tsx';
import { People } from './pages/people.tsx';
import { Audit } from './pages/audit.tsx';
import { Approvals } from './pages/approvals.tsx';
import { Certs } from './pages/certs.tsx';
import { Volumes } from './pages/volumes.tsx';
import { Hosts } from './pages/hosts.tsx';
import { Pools } from './pages/pools.tsx';
import { Policies } from './pages/policies.tsx';
import { isOwner } from './can.ts';
import './styles.css';

function Login() {
  const { query } = useLocation();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [providers, setProviders] = useState<{ name: string; kind: 'oidc' | 'ldap'; displayName: string }[]>([]);
  useEffect(() => {
    signOnOptions().then(setProviders).catch(() => undefined);
  }, []);
  const done = async () => {
    setKnownSession(await currentSession());
    navigate(query.get('next') ?? '/', { replace: true });
  };
  useEffect(() => {
    const code = new URLSearchParams(location.hash.slice(1)).get('code');
    if (!code) return;
    // The code leaves the address bar (and history) before it is spent.
    history.replaceState(null, '', location.pathname + location.search);
    setBusy(true);
    logInWithCode(code).then(done).catch((err) => {
      setError(message(err));
      setBusy(false);
    });
  }, []);
  return (
    <main id="main" class="login">
      <Page title="Log in to Berth">
        {busy && <p role="status">Logging in…</p>}
        {error && <p class="outcome bad" role="alert">{error}</p>}
        {query.get('expired') && !error && <p class="outcome bad" role="alert">Your session ended: log in again.</p>}
        {query.get('sso_error') && !error && <p class="outcome bad" role="alert">{query.get('sso_error')}</p>}
        {(
          <>
            <form class="card login-form" onSubmit={(e) => {
              e.preventDefault();
              const f = new FormData(e.currentTarget as HTMLFormElement);
              setBusy(true);
              setError(undefined);
              logInWithPassword(String(f.get('user') ?? ''), String(f.get('password') ?? '')).then(done).catch((err) => {
                setError(message(err));
                setBusy(false);
              });
            }}>
              <label>User <input name="user" autoComplete="username" required /></label>
              <label>Password <input name="password" type="password" autoComplete="current-password" required /></label>
              <button class="btn primary" type="submit" disabled={busy}>Log in</button>
              {providers.some((p) => p.kind === 'ldap') && <p class="muted">Directory accounts ({providers.filter((p) => p.kind === 'ldap').map((p) => p.displayName).join(', ')}) log in here with their directory name and password.</p>}
            </form>
            {providers.some((p) => p.kind === 'oidc') && (
              <div class="card sso">
                {providers.filter((p) => p.kind === 'oidc').map((p) => (
                  <a key={p.name} class="btn" href={signOnHref(p.name, query.get('next') ?? '/')}>Sign in with {p.displayName}</a>
                ))}
              </div>
            )}
            <div class="card">
              <p>Or, on the machine that runs Berth, run</p>
              <pre class="cmd">berth portal</pre>
              <p>and open the link it prints. A link works once, for 5 minutes.</p>
            </div>
          </>
        )}
      </Page>
    </main>
  );
}

const NAV: [string, string][] = [['/', 'Home'], ['/events', 'Events'], ['/alerts', 'Alerts'], ['/builds', 'Builds'], ['/images', 'Images'], ['/approvals', 'Approvals'],
  ['/volumes', 'Volumes'], ['/hosts', 'Hosts'], ['/pools', 'Pools'], ['/policies', 'Guardrails'], ['/certs', 'Certificates'], ['/people', 'People & teams']];
/** Pages only owners may read (the API refuses the rest). */
const OWNERS_NAV: [string, string][] = [['/audit', 'Audit log']];

function AppNav(props: { path: string; who: SessionView }) {
  const apps = useData(listApps, 'nav-apps');
  const current = /^\/apps\/([^/]+)/.exec(props.path)?.[1];
  return (
    <nav aria-label="Main" class="nav">
      <Link href="/" class="brand">⚓ Berth</Link>
      <ul>
        {[...NAV, ...(isOwner() ? OWNERS_NAV : [])].map(([href, label]) => (
          <li key={href}><Link href={href} aria-current={props.path === href ? 'page' : undefined}>{label}</Link></li>
        ))}
      </ul>
      <h2 class="nav-h">Apps</h2>
      <ul>
        {apps.data?.apps.map((a) => (
          <li key={a.name}><Link href={`/apps/${encodeURIComponent(a.name)}`} aria-current={current === encodeURIComponent(a.name) ? 'page' : undefined}>{a.name}</Link></li>
        ))}
        {apps.data?.apps.length === 0 && <li class="muted">none yet</li>}
      </ul>
      <div class="nav-foot">
        <span class="who">{props.who.name}</span>
        <button type="button" class="btn small logout" onClick={() => void logOut().then(() => {
          setKnownSession(undefined);
          navigate('/login');
        })}>Log out</button>
      </div>
    </nav>
  );
}

function route(path: string) {
  const m = /^\/apps\/([^/]+)(?:\/([a-z]+))?\/?$/.exec(path);
  if (m) {
    const app = decodeURIComponent(m[1]!);
    switch (m[2]) {
      case undefined: return <AppPage app={app} />;
      case 'releases': return <Releases app={app} />;
      case 'logs': return <Logs app={app} />;
      case 'metrics': return <Metrics app={app} />;
      case 'graph': return <Graph app={app} />;
      case 'config': return <Config app={app} />;
      case 'events': return <Events app={app} />;
      case 'volumes': return <Volumes app={app} />;
    }
  }
  const b = /^\/builds\/([^/]+)$/.exec(path);
  if (b) return <BuildPage id={decodeURIComponent(b[1]!)} />;
  switch (path) {
    case '/': return <Home />;
    case '/events': return <Events />;
    case '/alerts': return <Alerts />;
    case '/images': return <Images />;
    case '/builds': return <Builds />;
    case '/people': return <People />;
    case '/audit': return <Audit />;
    case '/approvals': return <Approvals />;
    case '/certs': return <Certs />;
    case '/volumes': return <Volumes />;
    case '/hosts': return <Hosts />;
    case '/pools': return <Pools />;
    case '/policies': return <Policies />;
  }
  return <Page title="Not found"><p>There is no page at {path}. <Link href="/">Go home</Link>.</p></Page>;
}

function Shell() {
  const { path, query } = useLocation();
  const [, tick] = useState(0);
  useEffect(() => watchSession(() => tick((n) => n + 1)), []);
  const who = knownSession();
  useEffect(() => {
    if (who !== null) return;
    // The apps (navigation and most pages) are asked for beside the session, not after it: with
    // a session the pages join this request while it is in flight; without one its 401 is dropped.
    listApps().catch(() => undefined);
    currentSession().then(setKnownSession, () => setKnownSession(undefined));
  }, [who]);
  useEffect(() => {
    if (who === undefined && path !== '/login') navigate(`/login?next=${encodeURIComponent(path + location.search)}`, { replace: true });
  }, [who, path]);
  // Focus the new page's heading after client-side navigation (a screen reader announces the new
  // page, as after a page load); a real page load keeps the browser's own start (the skip link first).
  const first = useRef(true);
  useEffect(() => {
    if (first.current) return void (first.current = false);
    document.getElementById('page-title')?.focus({ preventScroll: true });
  }, [path]);
  if (who === null) return <main id="main"><Loading what="your session" /></main>;
  if (path === '/login' || !who) return <Login key={query.toString()} />;
  return (
    <div class="shell">
      <a href="#main" class="skip">Skip to content</a>
      <AppNav path={path} who={who} />
      <main id="main">{route(path)}</main>
    </div>
  );
}

render(<Shell />, document.getElementById('app')!);
