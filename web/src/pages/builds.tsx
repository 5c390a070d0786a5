/** Builds from git pushes and webhooks: the list, and one build's live log with cancel. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, isUnauthorized, message } from '../api.ts';
import { Link } from '../router.tsx';
import { Badge, Empty, ErrorBox, Loaded, OutcomeNote, Page, Time, expired, span, useAction, useCoalesced, useData, useEvents } from '../ui.tsx';

const RUNNING = new Set(['queued', 'running']);

export function Builds() {
  const d = useData(() => api().builds({ limit: 100 }), 'builds');
  useEvents({}, useCoalesced(d.reload, 1000));
  return (
    <Page title="Builds" sub="From git pushes and webhooks, newest first">
      <Loaded d={d} what="builds">
        {({ builds }) => builds.length === 0 ? <Empty>No builds yet: push to an app's repository (<code>git push berth main</code>).</Empty> : (
          <table>
            <thead><tr><th scope="col">Build</th><th scope="col">App</th><th scope="col">Status</th><th scope="col">Commit</th><th scope="col">Stage</th><th scope="col">Started</th><th scope="col">Took</th></tr></thead>
            <tbody>
              {builds.map((b) => (
                <tr key={b.id}>
                  <th scope="row"><Link href={`/builds/${encodeURIComponent(b.id)}`}>{b.id}</Link></th>
                  <td><Link href={`/apps/${encodeURIComponent(b.app)}`}>{b.app}</Link> → {b.env}</td>
                  <td><Badge status={b.status} />{b.message && <div class="muted small">{b.message}</div>}</td>
                  <td><code>{b.commit.slice(0, 10)}</code> {b.branch}</td>
                  <td>{b.stage ?? '-'}</td>
                  <td><Time ts={b.startedAt ?? b.createdAt} /></td>
                  <td>{b.finishedAt && b.startedAt ? span(b.finishedAt - b.startedAt) : '-'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </Page>
  );
}

export function BuildPage({ id }: { id: string }) {
  const d = useData(() => api().build(id), `build:${id}`);
  useEvents({}, useCoalesced(d.reload, 1000));
  const a = useAction();
  const b = d.data?.build;
  return (
    <Page title={`Build ${id}`} sub={b && <><Link href={`/apps/${encodeURIComponent(b.app)}`}>{b.app}</Link> · {b.branch} · <code>{b.commit.slice(0, 12)}</code></>}
      actions={b && RUNNING.has(b.status) && <button class="btn warn" type="button" disabled={a.busy} onClick={() => void a.run(async () => {
        const r = await api().cancelBuild(id);
        d.reload();
        return `Build ${r.build.id} is ${r.build.status}.`;
      })}>Cancel build</button>}>
      <OutcomeNote outcome={a.outcome} />
      <Loaded d={d} what="the build">
        {({ build }) => (
          <>
            <p><Badge status={build.status} /> {build.message} {build.stage && <>· stage {build.stage}</>}</p>
            <BuildLog id={id} follow={RUNNING.has(build.status)} />
          </>
        )}
      </Loaded>
    </Page>
  );
}

function BuildLog({ id, follow }: { id: string; follow: boolean }) {
  const [text, setText] = useState('');
  const [error, setError] = useState<string>();
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const ctl = new AbortController();
    setText('');
    (async () => {
      try {
        const res = await api().buildLogs(id, { follow }, ctl.signal);
        const dec = new TextDecoder();
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          setText((t) => t + dec.decode(chunk, { stream: true }));
        }
      } catch (err) {
        if ((err as Error).name === 'AbortError') return;
        if (isUnauthorized(err)) return expired();
        setError(message(err));
      }
    })();
    return () => ctl.abort();
  }, [id, follow]);
  useEffect(() => {
    if (pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text]);
  return (
    <>
      {error && <ErrorBox error={error} />}
      <pre class="buildlog" ref={pre} tabIndex={0} aria-label="Build log">{text || (follow ? 'Waiting for output…' : '(no output)')}</pre>
    </>
  );
}
