import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { LABEL, type Mount } from '../../core/ports.ts';
import { statusOf, toBerthError } from './docker-errors.ts';

/** Credentials Swarm passes to the host that pulls (`--with-registry-auth`). */
export interface SwarmRegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

/** One file a task gets as a Swarm secret: where, what, whose, which mode. */
export interface ShippedFile {
  target: string;
  content: Buffer;
  uid: number;
  gid: number;
  mode: number;
}

/**
 * What a one-task service needs from the control host to run on any host of the cluster (issue 13
 * item 4): the image by a reference every host can pull, and Berth's files (config and secret files,
 * resolv.conf) as Swarm secrets instead of bind mounts of the control host's tmpfs.
 */
export interface SwarmShipping {
  /** The reference every host pulls for `image` (an id or reference on the control host's engine) and the registry credentials for it. */
  image(image: string): Promise<{ ref: string; auth?: SwarmRegistryAuth }>;
  /** The files of a bind mount that Berth ships as Swarm secrets; undefined: it stays a bind mount. */
  files(mount: Mount): Promise<ShippedFile[] | undefined>;
}

/** A reference Swarm can give every host: an image id becomes the digest reference of a registry the hosts reach. */
export function pickClusterRef(image: string, repoDigests: string[], toCluster: (ref: string) => string | undefined): string {
  const direct = toCluster(image);
  if (direct) return direct;
  if (!image.startsWith('sha256:')) return image;
  for (const d of repoDigests) {
    const c = toCluster(d);
    if (c) return c;
  }
  // Pulled from another registry: its digest reference (every host pulls the same bytes).
  const other = repoDigests.find((d) => d.includes('@sha256:'));
  return other ?? image;
}

/** `HOST/repo@…` → HOST when the first part names a registry host (Docker's rule), else docker.io. */
function registryHost(ref: string): string {
  const first = ref.split('/')[0]!;
  return ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'docker.io';
}

/**
 * The data plane over the control host's engine (where Berth builds and pulls) and the cluster
 * registry: image ids become `CLUSTER-REGISTRY/repo@sha256:…` (or another registry's digest
 * reference); bind mounts of files under `roots` (Berth's tmpfs of config and secret files, its
 * resolv.conf directory) become Swarm secrets, with `rewrite` applied to each content (a resolv.conf
 * that names the loopback DNS listener names the cluster address instead).
 */
export function swarmShipping(o: {
  docker: Docker;
  toCluster: (ref: string) => string | undefined;
  auth: (registryHost: string) => { username: string; password: string } | undefined;
  roots: string[];
  rewrite?: (path: string, content: Buffer) => Buffer;
}): SwarmShipping {
  const under = (p: string) => o.roots.some((r) => p === r || p.startsWith(r.endsWith('/') ? r : `${r}/`));
  return {
    async image(image) {
      let digests: string[] = [];
      if (image.startsWith('sha256:')) {
        const info = (await o.docker.getImage(image).inspect().catch((e: unknown) => {
          if (statusOf(e) === 404) return undefined;
          throw toBerthError(e, '', `inspect image ${image}`);
        })) as { RepoDigests?: string[] } | undefined;
        digests = info?.RepoDigests ?? [];
      }
      const ref = pickClusterRef(image, digests, o.toCluster);
      if (ref.startsWith('sha256:')) return { ref };
      const host = registryHost(ref);
      const c = o.auth(host);
      return { ref, ...(c ? { auth: { ...c, serveraddress: host } } : {}) };
    },
    async files(m) {
      if (m.type !== 'bind' || !under(m.source)) return undefined;
      const st = await stat(m.source);
      const entries = st.isDirectory()
        ? (await readdir(m.source, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => ({ path: join(m.source, e.name), target: `${m.target}/${e.name}` }))
        : [{ path: m.source, target: m.target }];
      return Promise.all(entries.map(async (e) => {
        const s = await stat(e.path);
        const raw = await readFile(e.path);
        const content = o.rewrite ? o.rewrite(e.path, raw) : raw;
        // Swarm holds no empty secret: an empty file (the config directory's `env` without values) arrives as one newline.
        return { target: e.target, content: content.length ? content : Buffer.from('\n'), uid: s.uid, gid: s.gid, mode: s.mode & 0o777 };
      }));
    },
  };
}

/** The Swarm secret's name for a content: one per installation and content (secrets are immutable: a new content is a new secret). */
export function secretName(cluster: string, content: Buffer): string {
  return `berth-${cluster || 'x'}-${createHash('sha256').update(content).digest('hex').slice(0, 32)}`;
}

/**
 * Swarm secrets for shipped files (created once per content, found by name when they exist) and the
 * references a task template carries.
 */
export async function ensureSecrets(docker: Docker, cluster: string, files: ShippedFile[], count: () => void): Promise<unknown[]> {
  const refs: unknown[] = [];
  const ids = new Map<string, string>();
  for (const f of files) {
    const name = secretName(cluster, f.content);
    let id = ids.get(name);
    if (!id) {
      count();
      try {
        const r = (await docker.createSecret({ Name: name, Labels: { [LABEL.managed]: 'true', [LABEL.cluster]: cluster }, Data: f.content.toString('base64') })) as { id?: string; ID?: string };
        id = r.id ?? r.ID;
      } catch (e) {
        if (statusOf(e) !== 409) throw toBerthError(e, '', `create Swarm secret ${name}`);
      }
      if (!id) {
        count();
        const found = (await docker.listSecrets({ filters: { name: [name] } })) as Array<{ ID: string; Spec: { Name: string } }>;
        id = found.find((s) => s.Spec.Name === name)?.ID;
        if (!id) throw new Error(`Swarm secret ${name} neither created nor found`);
      }
      ids.set(name, id);
    }
    refs.push({ SecretID: id, SecretName: name, File: { Name: f.target, UID: String(f.uid), GID: String(f.gid), Mode: f.mode } });
  }
  return refs;
}

/** Removes the secrets a removed service used, unless another service still uses them (Swarm refuses then). */
export async function releaseSecrets(docker: Docker, secretIds: string[], count: () => void): Promise<void> {
  for (const id of secretIds) {
    count();
    await docker.getSecret(id).remove().catch(() => undefined);
  }
}
