/**
 * Summarises a V8 .cpuprofile (from BENCH_CPU_PROF=1): self time by package/file and by function,
 * and inclusive time of selected frames.
 *
 *   node -r @swc-node/register ../../bench/profile-summary.ts <file.cpuprofile> [top=25]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: profile-summary.ts <file.cpuprofile> [top]\n');
  process.exit(2);
}
const top = Number(process.argv[3] ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// self time per node from samples
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
const total = [...self.values()].reduce((a, b) => a + b, 0);

function pkg(url: string): string {
  if (!url) return '(native/V8)';
  const m = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.startsWith('node:')) return url;
  const src = /\/(apps\/api\/src\/.*|packages\/[^/]+\/src\/.*|bench\/.*)$/.exec(url);
  return src ? src[1] : url;
}

const add = (m: Map<string, number>, k: string, v: number): void => {
  m.set(k, (m.get(k) ?? 0) + v);
};
const byPkg = new Map<string, number>();
const byFn = new Map<string, number>();
for (const [id, ms] of self) {
  const n = byId.get(id)!;
  const name = n.callFrame.functionName || '(anonymous)';
  add(byPkg, pkg(n.callFrame.url), ms);
  add(byFn, `${name}  ${pkg(n.callFrame.url)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`, ms);
}

// inclusive time per package: a sample counts once for every package on its stack
const inclusive = new Map<string, number>();
profile.samples.forEach((id, i) => {
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur)!;
    if (n.callFrame.url)
      seen.add(
        pkg(n.callFrame.url)
          .replace(/\/.*$/, '')
          .replace(/^apps$/, 'apps/api/src'),
      );
  }
  for (const k of seen) add(inclusive, k, (profile.timeDeltas[i] ?? 0) / 1000);
});

const show = (title: string, m: Map<string, number>): void => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top))
    process.stdout.write(`${v.toFixed(0).padStart(8)} ms ${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}\n`);
};
process.stdout.write(
  `${file}: ${total.toFixed(0)} ms sampled over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s\n`,
);
show('self time by package / file', byPkg);
show('self time by function', byFn);
show('inclusive time by package (on the stack)', inclusive);
