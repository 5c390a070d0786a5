/**
 * App and service names. App names end up in container names, labels, image names and DNS labels,
 * so they are held to `[a-z0-9][a-z0-9-]*` and 63 characters. Compose service names may hold
 * capitals, `_` and `.` (`[a-zA-Z0-9._-]+`): Berth accepts them as written and derives the name it
 * uses everywhere a name becomes a DNS label, an nginx upstream, a Docker container or volume name,
 * a directory or a label value (lower case, `_` and `.` → `-`); two names deriving to one are an error.
 */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]*$/;
/** What Compose accepts as a service, network or volume name. */
export const COMPOSE_NAME_PATTERN = /^[a-zA-Z0-9._-]+$/;
export const MAX_NAME = 63;

/** Best-effort conversion to a valid name: `My_App.v2` → `my-app-v2`. Empty if nothing is left. */
export function sanitizeName(raw: string): string {
  return raw
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+/, '')
    .slice(0, MAX_NAME)
    .replace(/-+$/, '');
}

/** Berth's name for a Compose service name: lower case, `_` and `.` → `-` (`with_depends_on` → `with-depends-on`). */
export function derivedServiceName(composeName: string): string {
  return composeName.toLowerCase().replace(/[_.]/g, '-');
}

/** Undefined when valid; otherwise what is wrong and what would be right. */
export function nameProblem(kind: 'app' | 'service', name: string): string | undefined {
  if (name.length > MAX_NAME) return `${kind} name "${name}" is too long: at most ${MAX_NAME} characters (it is used in DNS names)`;
  if (NAME_PATTERN.test(name)) return undefined;
  const fixed = sanitizeName(name);
  const suggestion = fixed !== '' ? `, e.g. "${fixed}"` : '';
  return `${kind} name "${name}" is invalid: use lowercase letters, digits and dashes, starting with a letter or digit${suggestion}`;
}

/**
 * A Compose service name: undefined when Compose accepts it and its derived name is a DNS label
 * (starts with a letter or digit, at most 63 characters); otherwise what is wrong.
 */
export function serviceNameProblem(name: string): string | undefined {
  if (!COMPOSE_NAME_PATTERN.test(name)) {
    const fixed = sanitizeName(name);
    return `service name "${name}" is invalid: use letters, digits, ".", "_" and "-"${fixed !== '' ? `, e.g. "${fixed}"` : ''}`;
  }
  const derived = derivedServiceName(name);
  if (derived.length > MAX_NAME) return `service name "${name}" is too long: at most ${MAX_NAME} characters (it is used in DNS names)`;
  if (!/^[a-z0-9]/.test(derived)) {
    const fixed = sanitizeName(name);
    return `service name "${name}" is invalid: it must start with a letter or digit (it is used in DNS names)${fixed !== '' ? `, e.g. "${fixed}"` : ''}`;
  }
  return undefined;
}
