import type { Command } from 'commander';
import { ago, CliFailure, connect, EXIT, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { collectImages, listImages, type ImageView } from '../../client/image-client.ts';
import { formatImageSize } from '../../core/image-checks.ts';

/** The same measure and format as the image checks' size report (unpacked, as `docker images` counts it). */
function size(bytes: number | undefined): string {
  return bytes === undefined ? '-' : formatImageSize(bytes);
}

/** `prod#7*` (current) `pre#3` …: the releases using an image, newest per env first. */
function usedBy(i: ImageView): string {
  const uses = i.usedBy.map((u) => `${u.env}#${u.seq}${u.current ? '*' : ''}${u.running && !u.current ? '~' : ''}`);
  if (uses.length <= 4) return uses.join(' ') || '-';
  return `${uses.slice(0, 4).join(' ')} +${uses.length - 4}`;
}

function rows(images: ImageView[], dropped = 'no: goes at the next collection'): string[][] {
  const out = [['IMAGE', 'TAG', 'DIGEST', 'SIZE', 'PUSHED', 'USED BY', 'KEEP']];
  for (const i of images) {
    out.push([i.repo, i.tags.join(',') || '<none>', i.digest.slice(7, 19), size(i.sizeBytes), (i.pushedAt || i.createdAt) ? ago(i.pushedAt || i.createdAt) : '-', usedBy(i),
      i.keep ? i.reasons.join(',') : dropped]);
  }
  return out;
}

export function registerImages(program: Command): void {
  const images = program.command('images')
    .argument('[app]', 'only this app')
    .description('images in Berth\'s registry: tags, size, the releases using them (* current, ~ running), and whether garbage collection keeps them')
    .addHelpText('after', `
SIZE is the unpacked image, as \`docker images\` and the push's image checks count it (--json also
gives compressedBytes: what the image takes in the registry).

Kept per service (BERTH_REGISTRY_KEEP = N, default 5): the current release in every environment,
images any instance runs, the last N releases (rollback), images of unfinished builds and deployments,
and the N newest others of services still deployed (a removed app keeps none). Everything else is
deleted after each build (manifests) and its storage is freed periodically (BERTH_REGISTRY_GC_INTERVAL_MS, default 6 h) or by \`berth images gc\`.`)
    .action(async (app: string | undefined) => {
      const g = program.opts<GlobalOpts>();
      const res = await listImages(connect(g), app);
      if (g.json) return output(g, res.images, () => undefined);
      if (res.images.length === 0) return void console.log(app ? `no images of ${app} in Berth's registry` : 'no images in Berth\'s registry yet: they arrive with git push');
      console.log(table(rows(res.images)));
      const drop = res.images.filter((i) => !i.keep);
      process.stderr.write(`${res.images.length} image(s), ${drop.length} to be deleted (keep ${res.keep}: \`berth images gc\` collects now)\n`);
    });

  images.command('gc')
    .description('garbage-collect Berth\'s registry now: delete images no release needs, remove their local copies, free storage')
    .option('--keep <n>', 'releases and other images kept per service (default: the server\'s BERTH_REGISTRY_KEEP)')
    .option('--dry-run', 'only show what would be deleted')
    .action(async (o: { keep?: string; dryRun?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      let keep: number | undefined;
      if (o.keep !== undefined) {
        keep = Number(o.keep);
        if (!Number.isInteger(keep) || keep < 1) throw new CliFailure(`--keep "${o.keep}" must be a whole number of at least 1`, EXIT.usage);
      }
      const res = await collectImages(connect(g), { ...(keep !== undefined ? { keep } : {}), ...(o.dryRun ? { dryRun: true } : {}) });
      if (g.json) output(g, res, () => undefined);
      else {
        const verb = res.dryRun ? 'would delete' : 'deleted';
        if (res.deleted.length > 0) console.log(table(rows(res.deleted, verb)));
        console.log(`${verb} ${res.deleted.length} image(s), kept ${res.kept.length} (keep ${res.keep})` +
          (res.dryRun ? '' : `; removed ${res.localRemoved.length} local reference(s)` +
            (res.blobs.collected ? `; registry storage freed: ${size(res.blobs.reclaimedBytes)}` : '; no registry storage to free')));
      }
      if (res.errors.length > 0) {
        for (const e of res.errors) process.stderr.write(`warning: ${e}\n`);
        throw new CliFailure(`garbage collection finished with ${res.errors.length} problem(s) (see above)`, EXIT.failed);
      }
    });
}
