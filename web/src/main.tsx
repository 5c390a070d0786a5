/** The Berth portal: layout, navigation and the page for each path. */
import { render, type ComponentType } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { currentSession, endPriming, hasSessionCookie, knownSession, prime, primedOr, logInWithCode, logInWithPassword, logOut, listApps, message, setKnownSession, signOnHref, signOnOptions, watchSession, type SessionView } from './api.ts';
import { Link, navigate, useLocation } from './router.tsx';
import { Loading, Page, useData } from './ui.tsx';
import { Home, loadHome } from './pages/home.tsx';
import { isOwner } from './can.ts';
import './styles.css';

/**
 * A page whose code loads when it is first shown: the entry script holds the shell, the login and
 * home pages only, so the first page of a load parses and runs less (home's time to interactive).
 */
function lazyPage<P extends object>(load: () => Promise<ComponentType<P>>): ComponentType<P> {
  let C: ComponentType<P> | undefined;
  let loading: Promise<void> | undefined;
  let failed: string | undefined;
  return function Lazy(props: P) {
    const [, tick] = useState(0);
    useEffect(() => {
      if (C || failed) return;
      let live = true;
      loading ??= load().then((c) => void (C = c), (err) => void (failed = message(err)));
      void loading.then(() => live && tick((n) => n + 1));
      return () => void (live = false);
    }, []);
    if (failed) return <Page title="This page could not load"><p class="outcome bad" role="alert">{failed}. Reload the page to try again.</p></Page>;
    return C ? <C {...props} /> : <Loading what="the page" />;
  };
}

const AppPage = lazyPage(() => import('./pages/app.tsx').then((m) => m.AppPage));
const Releases = lazyPage(() => import('./pages/releases.tsx').then((m) => m.Releases));
const Logs = lazyPage(() => import('./pages/logs.tsx').then((m) => m.Logs));
const Metrics = lazyPage(() => import('./pages/metrics.tsx').then((m) => m.Metrics));
const Graph = lazyPage(() => import('./pages/graph.tsx').then((m) => m.Graph));
const Events = lazyPage(() => import('./pages/events.tsx').then((m) => m.Events));
const Alerts = lazyPage(() => import('./pages/alerts.tsx').then((m) => m.Alerts));
const Images = lazyPage(() => import('./pages/images.tsx').then((m) => m.Images));
const Builds = lazyPage(() => import('./pages/builds.tsx').then((m) => m.Builds));
const BuildPage = lazyPage(() => import('./pages/builds.tsx').then((m) => m.BuildPage));
const Config = lazyPage(() => import('./pages/config.tsx').then((m) => m.Config));
const People = lazyPage(() => import('./pages/people.tsx').then((m) => m.People));
const Audit = lazyPage(() => import('./pages/audit.tsx').then((m) => m.Audit));
const Approvals = lazyPage(() => import('./pages/approvals.tsx').then((m) => m.Approvals));
const Certs = lazyPage(() => import('./pages/certs.tsx').then((m) => m.Certs));
const Volumes = lazyPage(() => import('./pages/volumes.tsx').then((m) => m.Volumes));
const Hosts = lazyPage(() => import('./pages/hosts.tsx').then((m) => m.Hosts));
const Pools = lazyPage(() => import('./pages/pools.tsx').then((m) => m.Pools));
const Policies = lazyPage(() => import('./pages/policies.tsx').then((m) => m.Policies));

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

function AppNav(props: { path: string; who: SessionView | null }) {
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
        <span class="who">{props.who?.name ?? ''}</span>
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
    // No CSRF cookie: no session was opened in this browser (or it was logged out or expired), so
    // the login page shows without asking the server (no request made only to be refused).
    if (!hasSessionCookie()) return setKnownSession(undefined);
    primedOr('session', currentSession).then(setKnownSession, () => setKnownSession(undefined));
  }, [who]);
  const signedOut = who === undefined || (who === null && !hasSessionCookie());
  useEffect(() => {
    if (signedOut && path !== '/login') navigate(`/login?next=${encodeURIComponent(path + location.search)}`, { replace: true });
  }, [signedOut, path]);
  // Focus the new page's heading after client-side navigation (a screen reader announces the new
  // page, as after a page load); a real page load keeps the browser's own start (the skip link first).
  const first = useRef(true);
  useEffect(() => {
    // The first render's pages have taken the reads primed at start (their effects ran before this one).
    if (first.current) return void (first.current = false, endPriming());
    document.getElementById('page-title')?.focus({ preventScroll: true });
  }, [path]);
  // With a session cookie the page renders at once, its reads going out beside the session check
  // (the session's name and owner-only links fill in when it answers); if the session has ended,
  // those reads are refused and the login page says so.
  if (path === '/login' || signedOut) return <Login key={query.toString()} />;
  return (
    <div class="shell">
      <a href="#main" class="skip">Skip to content</a>
      <AppNav path={path} who={who} />
      <main id="main">{route(path)}</main>
    </div>
  );
}

// With a session, the first page's reads start now, beside the session check, not after the script
// has rendered (on a busy machine that is hundreds of milliseconds later).
if (hasSessionCookie()) {
  prime('session', currentSession);
  prime('apps', listApps);
  if (location.pathname === '/') prime('home', loadHome);
}
render(<Shell />, document.getElementById('app')!);
