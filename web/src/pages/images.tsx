/** Images in Berth's registry and why each is kept (or would go at the next collection). */
import { api } from '../api.ts';
import { listImages } from '../../../src/client/image-client.ts';
import { Badge, Empty, Loaded, Page, Time, shortId, useData } from '../ui.tsx';

export function Images() {
  const d = useData(() => listImages(api()), 'images');
  return (
    <Page title="Images" sub="Berth's registry: what each image is kept for">
      <Loaded d={d} what="images">
        {({ images, keep }) => images.length === 0 ? <Empty>No images in Berth's registry yet (built images land here on git push).</Empty> : (
          <>
            <p class="muted">Keeps the releases of each service as rollback material and the newest {keep} other images per service.</p>
            <table>
              <thead><tr><th scope="col">App/service</th><th scope="col">Digest</th><th scope="col">Tags</th><th scope="col">Kept because</th><th scope="col">Pushed</th></tr></thead>
              <tbody>
                {images.map((i) => (
                  <tr key={i.repo + i.digest}>
                    <th scope="row">{i.app}/{i.service}</th>
                    <td><code>{shortId(i.digest, 19)}</code></td>
                    <td>{i.tags.join(', ') || <span class="muted">untagged</span>}</td>
                    <td>{i.keep ? i.reasons.map((r) => <Badge key={r} status="healthy" label={r} />) : <Badge status="failed" label="goes at next GC" />}</td>
                    <td><Time ts={i.pushedAt || i.createdAt} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </Loaded>
    </Page>
  );
}
