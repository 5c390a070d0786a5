/**
 * App and service names. They end up in container names, labels, image names and DNS labels, so
 * they are held to `[a-z0-9][a-z0-9-]*` and 63 characters; Compose allows more (`_`, `.`, capitals),
 * which Berth rejects with the dashed form as a suggestion rather than renaming behind the user's back.
 */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]*$/;
const MAX_NAME = 63;

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

/** Undefined when valid; otherwise what is wrong and what would be right. */
export function nameProblem(kind: 'app' | 'service', name: string): string | undefined {
  if (name.length > MAX_NAME) return `${kind} name "${name}" is too long: at most ${MAX_NAME} characters (it is used in DNS names)`;
  if (NAME_PATTERN.test(name)) return undefined;
  const fixed = sanitizeName(name);
  const suggestion = fixed !== '' ? `, e.g. "${fixed}"` : '';
  return `${kind} name "${name}" is invalid: use lowercase letters, digits and dashes, starting with a letter or digit${suggestion}`;
}
