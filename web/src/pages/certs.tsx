/** Certificates of routes' hosts: source, issuer, expiry, renewal state; upload, renew, remove (owners). */
import { api } from '../api.ts';
import { isOwner } from '../can.ts';
import { Badge, Empty, Loaded, OutcomeNote, Page, Time, span, useAction, useCoalesced, useData, useEvents, Scroll } from '../ui.tsx';

const DAY = 86_400_000;

export function Certs() {
  const d = useData(() => api().certs(), 'certs');
  useEvents({}, useCoalesced(d.reload, 1000));
  const owner = isOwner();
  const a = useAction();
  const now = Date.now();
  return (
    <Page title="Certificates" sub="HTTPS for the hosts that routes name">
      <OutcomeNote outcome={a.outcome} />
      <Loaded d={d} what="certificates">
        {({ certs }) => certs.length === 0 ? <Empty>No route names a host yet: certificates appear here for <code>x-berth.routes</code> with a host.</Empty> : (
          <Scroll label="Certificates">
            <table aria-label="Certificates">
              <thead><tr><th scope="col">Host</th><th scope="col">Status</th><th scope="col">Source</th><th scope="col">Expires</th><th scope="col">Renewal</th><th scope="col">Routes</th>{owner && <th scope="col"><span class="sr-only">Actions</span></th>}</tr></thead>
              <tbody>
                {certs.map((c) => (
                  <tr key={c.host} data-cert={c.host}>
                    <th scope="row">{c.host}</th>
                    <td><Badge status={c.status === 'valid' ? 'ok' : c.status === 'renewing' || c.status === 'pending' ? 'pending' : c.status === 'failed' || c.status === 'expired' ? 'failed' : 'none'} label={c.status} />
                      {c.lastError && <div class="muted small">{c.lastError}</div>}</td>
                    <td>{c.source ?? '-'}{c.issuer && <div class="muted small">{c.issuer}</div>}</td>
                    <td>{c.notAfter ? <><time dateTime={new Date(c.notAfter).toISOString()}>{new Date(c.notAfter).toLocaleDateString()}</time>
                      <div class={`small ${c.notAfter - now < 14 * DAY ? 'warn-text' : 'muted'}`}>{c.notAfter > now ? `in ${span(c.notAfter - now)}` : 'expired'}</div></> : '-'}</td>
                    <td>{c.retryAt ? <>retry <Time ts={c.retryAt} /></> : c.renewAt ? (c.renewAt > now ? `from ${new Date(c.renewAt).toLocaleDateString()}` : 'due') : c.source === 'upload' ? 'upload a new one before expiry' : '-'}</td>
                    <td class="small">{c.routes.join(', ') || '-'}</td>
                    {owner && <td><div class="row-actions">
                      {c.source === 'acme' && <button class="btn small" type="button" disabled={a.busy} aria-label={`Renew ${c.host}`} onClick={() => void a.run(async () => {
                        const r = await api().renewCert(c.host);
                        d.reload();
                        return `Renewal of ${c.host} asked: ${r.status}.`;
                      })}>Renew</button>}
                      {c.source && <button class="btn small warn" type="button" disabled={a.busy} aria-label={`Remove the certificate of ${c.host}`} onClick={() => void a.run(async () => {
                        await api().removeCert(c.host);
                        d.reload();
                        return `Removed the certificate of ${c.host}.`;
                      })}>Remove</button>}
                    </div></td>}
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
      </Loaded>
      {owner && (
        <form class="card upload" aria-labelledby="upload-h" onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget as HTMLFormElement);
          const host = String(f.get('host') ?? '').trim();
          void a.run(async () => {
            const r = await api().uploadCert(host, String(f.get('cert') ?? ''), String(f.get('key') ?? ''));
            d.reload();
            return `Certificate of ${r.host} stored: ${r.status}, expires ${r.notAfter ? new Date(r.notAfter).toLocaleDateString() : '?'}.`;
          });
        }}>
          <h2 id="upload-h">Upload a certificate</h2>
          <p class="muted">A PEM chain (the host's certificate first) and its unencrypted PEM key; checked before anything is stored.</p>
          <label>Host <input name="host" required placeholder="shop.example.com" /></label>
          <label>Certificate chain (PEM) <textarea name="cert" required rows={4} /></label>
          <label>Private key (PEM) <textarea name="key" required rows={4} autoComplete="off" /></label>
          <button class="btn primary" type="submit" disabled={a.busy}>Upload</button>
        </form>
      )}
    </Page>
  );
}
