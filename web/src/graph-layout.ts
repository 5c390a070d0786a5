/** The dependency graph's automatic layout (pure: tested in graph-layout.test.ts). */
export interface GraphNode {
  name: string;
  deps: string[];
}

/**
 * Layered layout: a service sits one layer right of the deepest service it depends on (cycles and
 * unknown names are cut), ordered within a layer by the mean position of its dependencies.
 */
export function layout(nodes: GraphNode[]): { name: string; layer: number; row: number }[] {
  const by = new Map(nodes.map((n) => [n.name, n]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const dfs = (n: string): number => {
    if (depth.has(n)) return depth.get(n)!;
    if (visiting.has(n)) return 0;
    visiting.add(n);
    const deps = (by.get(n)?.deps ?? []).filter((d) => by.has(d));
    const v = deps.length ? Math.max(...deps.map(dfs)) + 1 : 0;
    visiting.delete(n);
    depth.set(n, v);
    return v;
  };
  for (const n of nodes) dfs(n.name);
  const layers: string[][] = [];
  for (const n of [...nodes].sort((a, b) => a.name.localeCompare(b.name))) (layers[depth.get(n.name)!] ??= []).push(n.name);
  const row = new Map<string, number>();
  const out: { name: string; layer: number; row: number }[] = [];
  layers.forEach((names, layer) => {
    const score = (n: string) => {
      const ds = (by.get(n)?.deps ?? []).filter((d) => row.has(d));
      return ds.length ? ds.reduce((s, d) => s + row.get(d)!, 0) / ds.length : 0;
    };
    names.sort((a, b) => score(a) - score(b) || a.localeCompare(b)).forEach((n, i) => {
      row.set(n, i);
      out.push({ name: n, layer, row: i });
    });
  });
  return out;
}
