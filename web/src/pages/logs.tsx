/** Logs: search with filters (newest first, a page at a time) and a live tail of every replica. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, isUnauthorized, message, type LogLineView as Line } from '../api.ts';
import { responseLines, type LogsQuery } from '../../../src/client/client.ts';
import { navigate, useLocation, withQuery } from '../router.tsx';
import { Empty, ErrorBox, Loading, Page, expired, useData } from '../ui.tsx';
import { AppTabs, EnvPicker, useEnv } from './app.tsx';

const FIELDS = ['service', 'instance', 'stream', 'level', 'grep', 'since', 'until'] as const;
/** The search's filters as the API document types them (the page's own select and inputs fill them). */
type Filters = Pick<LogsQuery, 'env' | (typeof FIELDS)[number]>;
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

const STREAMS = ['stdout', 'stderr'] as const;
const oneOf = <T extends string>(list: readonly T[], v: string | undefined): v is T => list.includes(v as T);

/**
 * The page's query string as the API's filters. A stream or level the API would refuse (only a
 * hand-edited address has one) is not searched for: `problem` says what is wrong and what is right.
 */
export function filters(env: string | undefined, get: (k: string) => string | null): { q: Filters; problem?: string } {
  const v = (k: string) => get(k) || undefined;
  const stream = v('stream');
  const level = v('level');
  const q: Filters = { env, service: v('service'), instance: v('instance'), grep: v('grep'), since: v('since'), until: v('until'),
    ...(oneOf(STREAMS, stream) ? { stream } : {}), ...(oneOf(LEVELS, level) ? { level } : {}) };
  const problem = stream !== undefined && !oneOf(STREAMS, stream) ? `stream "${stream}" is not one of ${STREAMS.join(', ')}`
    : level !== undefined && !oneOf(LEVELS, level) ? `level "${level}" is not one of ${LEVELS.join(', ')}` : undefined;
  return { q, ...(problem ? { problem } : {}) };
}

export function Logs({ app }: { app: string }) {
  const { path, query } = useLocation();
  const appData = useData(() => api().app(app), `logs-app:${app}`);
  const envs = [...new Set(appData.data?.services.map((s) => s.env) ?? [])].sort();
  const env = useEnv(envs);
  const services = [...new Set(appData.data?.services.filter((s) => s.env === env).map((s) => s.name) ?? [])];
  const { q, problem } = filters(env, (k) => query.get(k));
  const key = JSON.stringify({ q, problem });
  const [pages, setPages] = useState<{ key: string; lines: Line[]; next?: string; loading: boolean; error?: string }>({ key: '', lines: [], loading: true });
  const [live, setLive] = useState(query.get('follow') === 'true');

  const fetchPage = (before: string | undefined) => api().logPage(app, { ...q, limit: 200, ...(before ? { before } : {}) });

  useEffect(() => {
    if (!env || live || problem) return;
    let gone = false;
    setPages({ key, lines: [], loading: true });
    fetchPage(undefined).then(
      (p) => !gone && setPages({ key, lines: p.lines, ...(p.next ? { next: p.next } : {}), loading: false }),
      (err) => {
        if (isUnauthorized(err)) return expired();
        if (!gone) setPages({ key, lines: [], loading: false, error: message(err) });
      },
    );
    return () => void (gone = true);
  }, [key, live]);

  const older = async () => {
    if (!pages.next) return;
    setPages((p) => ({ ...p, loading: true }));
    try {
      const p = await fetchPage(pages.next);
      setPages((cur) => ({ key, lines: [...cur.lines, ...p.lines], ...(p.next ? { next: p.next } : {}), loading: false }));
    } catch (err) {
      setPages((cur) => ({ ...cur, loading: false, error: message(err) }));
    }
  };

  return (
    <Page title={`${app}: logs`} sub={<EnvPicker envs={envs} env={env} />}>
      <AppTabs app={app} current="logs" />
      <form class="filters" role="search" aria-label="Search logs" onSubmit={(e) => {
        e.preventDefault();
        const f = new FormData(e.currentTarget as HTMLFormElement);
        const changes: Record<string, string | undefined> = {};
        for (const k of FIELDS) changes[k] = String(f.get(k) ?? '').trim() || undefined;
        navigate(withQuery(path, query, changes));
      }}>
        <label class="grow">Text <input name="grep" type="search" defaultValue={q.grep ?? ''} placeholder="words or &quot;a phrase&quot;" key={`g${q.grep}`} /></label>
        <label>Service <select name="service" defaultValue={q.service ?? ''} key={`s${q.service}${services.length}`}>
          <option value="">all</option>{services.map((s) => <option key={s} value={s}>{s}</option>)}
        </select></label>
        <label>Instance <input name="instance" defaultValue={q.instance ?? ''} size={10} key={`i${q.instance}`} /></label>
        <label>Stream <select name="stream" defaultValue={q.stream ?? ''} key={`st${q.stream}`}><option value="">both</option><option>stdout</option><option>stderr</option></select></label>
        <label>Level <select name="level" defaultValue={q.level ?? ''} key={`l${q.level}`}><option value="">any</option>{LEVELS.map((l) => <option key={l}>{l}</option>)}</select></label>
        <label>Since <input name="since" defaultValue={q.since ?? ''} placeholder="15m, ISO time" size={10} key={`si${q.since}`} /></label>
        <label>Until <input name="until" defaultValue={q.until ?? ''} placeholder="now" size={10} key={`u${q.until}`} /></label>
        <button class="btn primary" type="submit">Search</button>
        <button class="btn" type="button" aria-pressed={live} onClick={() => setLive(!live)}>{live ? 'Stop live tail' : 'Live tail'}</button>
      </form>
      {appData.error && <ErrorBox error={appData.error} retry={appData.reload} />}
      {problem && <ErrorBox error={`${problem}: pick one in the form above`} />}
      {env && !problem && live && <Tail app={app} q={q} />}
      {env && !problem && !live && (
        pages.error ? <ErrorBox error={pages.error} /> :
        pages.key !== key || (pages.loading && pages.lines.length === 0) ? <Loading what="log lines" /> :
        pages.lines.length === 0 ? <Empty>No log lines match{q.grep ? ` “${q.grep}”` : ''}{q.since ? ` since ${q.since}` : ''}.</Empty> :
        <>
          <LogTable lines={pages.lines} />
          {pages.next ? <button class="btn" type="button" disabled={pages.loading} onClick={() => void older()}>{pages.loading ? 'Loading…' : 'Older lines'}</button>
            : <p class="muted small">That is the oldest line kept.</p>}
        </>
      )}
    </Page>
  );
}

function Tail({ app, q }: { app: string; q: Filters }) {
  const [lines, setLines] = useState<Line[]>([]);
  const [error, setError] = useState<string>();
  const buf = useRef<Line[]>([]);
  useEffect(() => {
    const ctl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      const add = buf.current.reverse();
      buf.current = [];
      setLines((l) => [...add, ...l].slice(0, 2000));
    };
    (async () => {
      try {
        const res = await api().logs(app, { ...q, follow: 'true', limit: 100 }, ctl.signal);
        for await (const line of responseLines(res)) {
          buf.current.push(JSON.parse(line) as Line);
          timer ??= setTimeout(flush, 100);
        }
      } catch (err) {
        if ((err as Error).name === 'AbortError') return;
        if (isUnauthorized(err)) return expired();
        setError(message(err));
      }
    })();
    return () => {
      ctl.abort();
      clearTimeout(timer);
    };
  }, [JSON.stringify(q)]);
  return (
    <>
      <p class="live" role="status"><span class="dot" aria-hidden="true" /> Following every replica: new lines appear at the top.</p>
      {error && <ErrorBox error={error} />}
      {lines.length === 0 ? <Empty>Waiting for log lines…</Empty> : <LogTable lines={lines} />}
    </>
  );
}

function LogTable({ lines }: { lines: Line[] }) {
  return (
    <div class="logs" role="log" aria-label="Log lines, newest first">
      <table>
        <thead><tr><th scope="col">Time</th><th scope="col">Instance</th><th scope="col">Line</th></tr></thead>
        <tbody>
          {lines.map((l) => (
            <tr key={l.id} class={l.stream === 'stderr' ? 'stderr' : ''}>
              <td class="nowrap"><time dateTime={l.time}>{new Date(l.ts).toLocaleTimeString()}</time></td>
              <td class="nowrap">{l.service}/{l.instance}{l.level ? <span class={`lvl ${l.level}`}> {l.level}</span> : ''}</td>
              <td class="text">{l.text}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
