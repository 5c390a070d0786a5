/** Shared pieces of every page: data loading with its states, live events, badges, times, actions. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, isUnauthorized, message, setKnownSession } from './api.ts';
import type { EventView } from './api.ts';
import { navigate } from './router.tsx';

export interface Data<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  reload: () => void;
}

/** Loads `fn` when `key` changes; `reload` fetches again keeping the current data on screen. A 401 goes to the login page. */
export function useData<T>(fn: () => Promise<T>, key: string): Data<T> {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean; key: string }>({ loading: true, key });
  const seq = useRef(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const load = useCallback(() => {
    const n = ++seq.current;
    fnRef.current().then(
      (data) => n === seq.current && setState({ data, loading: false, key }),
      (err) => {
        if (isUnauthorized(err)) return expired();
        if (n === seq.current) setState((s) => ({ ...s, error: message(err), loading: false, key }));
      },
    );
  }, [key]);
  useEffect(() => {
    setState((s) => (s.key === key ? s : { loading: true, key }));
    load();
  }, [key, load]);
  const stale = state.key !== key;
  return { data: stale ? undefined : state.data, error: stale ? undefined : state.error, loading: stale || state.loading, reload: load };
}

/** The session ended (expired, logged out elsewhere, server restarted): back to the login page, saying so. */
export function expired(): void {
  setKnownSession(undefined);
  navigate(`/login?expired=1&next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
}

/**
 * Follows the server's event stream (GET /v1/events/stream) while mounted, reconnecting with backoff
 * from the last event seen, so nothing is missed across a reconnect. `start`: the last event id the
 * page already has (its first read returned it); `null`: that read is still under way, so wait for it
 * rather than ask the server for the newest id (one request less before the page is live);
 * undefined: start from the newest event.
 */
export function useEvents(filter: { app?: string; env?: string; service?: string }, onEvent: (e: EventView) => void, start?: number | null): void {
  const cb = useRef(onEvent);
  cb.current = onEvent;
  const key = JSON.stringify(filter) + (start === null ? 'wait' : start ?? '');
  useEffect(() => {
    if (start === null) return undefined;
    let after: number | undefined = start;
    return followWhileMounted(async (signal, connected) => {
      if (after === undefined) after = (await api().events({ ...filter, limit: 1 })).last;
      await api().streamEvents({ ...filter, after }, (e) => {
        after = Math.max(after ?? 0, e.id);
        connected();
        cb.current(e);
      }, signal);
    });
  }, [key]);
}

/**
 * Runs `follow` (one connection to a server stream) again and again until the returned stop function
 * is called, waiting 0.5 s after a failure and doubling up to 10 s; `connected()` (called on each
 * message) resets the wait. An expired session sends the page to the log-in. For useEffect.
 */
export function followWhileMounted(follow: (signal: AbortSignal, connected: () => void) => Promise<void>): () => void {
  const ctl = new AbortController();
  let delay = 500;
  (async () => {
    while (!ctl.signal.aborted) {
      try {
        await follow(ctl.signal, () => { delay = 500; });
      } catch (err) {
        if (isUnauthorized(err)) return expired();
      }
      if (ctl.signal.aborted) return;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  })();
  return () => ctl.abort();
}

/** Calls `fn` at most once per `ms` (trailing): many events in a burst cause one reload. */
export function useCoalesced(fn: () => void, ms = 250): () => void {
  const t = useRef<ReturnType<typeof setTimeout>>();
  const f = useRef(fn);
  f.current = fn;
  useEffect(() => () => clearTimeout(t.current), []);
  return useCallback(() => {
    if (t.current) return;
    t.current = setTimeout(() => {
      t.current = undefined;
      f.current();
    }, ms);
  }, [ms]);
}

export function Page(props: { title: string; sub?: ComponentChildren; actions?: ComponentChildren; children: ComponentChildren }) {
  useEffect(() => {
    document.title = `${props.title} · Berth`;
  }, [props.title]);
  return (
    <section class="page" aria-labelledby="page-title">
      <header class="page-head">
        <div>
          <h1 id="page-title" tabIndex={-1}>{props.title}</h1>
          {props.sub && <div class="sub">{props.sub}</div>}
        </div>
        {props.actions && <div class="page-actions">{props.actions}</div>}
      </header>
      {props.children}
    </section>
  );
}

export function Loading(props: { what?: string }) {
  return <p class="loading" role="status" aria-live="polite"><span class="spinner" aria-hidden="true" />Loading {props.what ?? ''}…</p>;
}

export function ErrorBox(props: { error: string; retry?: () => void }) {
  return (
    <div class="error" role="alert">
      <strong>Could not load:</strong> {props.error}
      {props.retry && <button type="button" class="btn small" onClick={props.retry}>Try again</button>}
    </div>
  );
}

export function Empty(props: { children: ComponentChildren }) {
  return <p class="empty">{props.children}</p>;
}

/** The three states of loaded data, then `children` with the data. */
export function Loaded<T>(props: { d: Data<T>; what: string; children: (data: T) => ComponentChildren }) {
  if (props.d.error && props.d.data === undefined) return <ErrorBox error={props.d.error} retry={props.d.reload} />;
  if (props.d.data === undefined) return <Loading what={props.what} />;
  return <>{props.children(props.d.data)}</>;
}

const TONE: Record<string, string> = {
  running: 'ok', healthy: 'ok', succeeded: 'ok', ok: 'ok', resolved: 'ok', passing: 'ok',
  deploying: 'busy', rolling: 'busy', pending: 'busy', building: 'busy', starting: 'busy', queued: 'busy', stopping: 'busy', unknown: 'muted',
  degraded: 'warn', pending_alert: 'warn', superseded: 'muted', stopped: 'muted', cancelled: 'muted', 'rolled-back': 'warn', none: 'muted',
  failed: 'bad', 'crash-looping': 'bad', unhealthy: 'bad', firing: 'bad', error: 'bad', exited: 'bad', dead: 'bad',
};

export function Badge(props: { status: string; label?: string }) {
  return <span class={`badge ${TONE[props.status] ?? 'muted'}`}>{props.label ?? props.status}</span>;
}

export function ago(ts: number | undefined, now = Date.now()): string {
  if (!ts) return '-';
  return `${span(now - ts)} ago`;
}

export function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? ` ${s % 60}s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function Time(props: { ts: number | undefined }) {
  if (!props.ts) return <span>-</span>;
  const d = new Date(props.ts);
  return <time dateTime={d.toISOString()} title={d.toLocaleString()}>{ago(props.ts)}</time>;
}

export function shortId(s: string, n = 12): string {
  return s.replace(/^sha256:/, '').slice(0, n);
}

/** The result of the last action: the API's refusal (an alert) or what happened (a status). */
export interface Outcome {
  ok: boolean;
  text: string;
}

export function OutcomeNote(props: { outcome: Outcome | undefined }) {
  const o = props.outcome;
  if (!o) return null;
  return o.ok
    ? <p class="outcome ok" role="status">{o.text}</p>
    : <p class="outcome bad" role="alert"><strong>Refused:</strong> {o.text}</p>;
}

/** Runs an action, keeping its outcome; while it runs the buttons that use `busy` are disabled. */
export function useAction(): { busy: boolean; outcome: Outcome | undefined; run: (fn: () => Promise<string>) => Promise<void>; clear: () => void } {
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<Outcome>();
  const run = useCallback(async (fn: () => Promise<string>) => {
    setBusy(true);
    setOutcome(undefined);
    try {
      setOutcome({ ok: true, text: await fn() });
    } catch (err) {
      if (isUnauthorized(err)) return expired();
      setOutcome({ ok: false, text: message(err) });
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, outcome, run, clear: () => setOutcome(undefined) };
}

/** A wide table's box: scrolls sideways on a narrow screen, and takes keyboard focus so it can be scrolled without a mouse. */
export function Scroll(props: { label: string; children: ComponentChildren }) {
  return <div class="card" tabIndex={0} role="region" aria-label={props.label}>{props.children}</div>;
}
