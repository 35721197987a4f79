/**
 * Fault suite, issue 10 item 1: hostile YAML bodies cannot freeze the schematic-store. Each one is answered with a
 * 400 naming the limit it exceeded, quickly, while lookups served by the same schematic-store keep answering; the
 * job is handled once (a FactoryError reply, never retried by BullMQ).
 */
import { freePort } from '../support/procs';
import { RunningFactory, S3Factory, startFactoryOnS3 } from '../support/factory';

jest.setTimeout(180_000);

/** Generous bounds: measured values are printed (~10–60 ms for the answer, a few ms for lookups). */
const ANSWER_MS = 1000;
const LOOKUP_MS = 1000;
const MiB = 1024 * 1024;

let env: S3Factory;
let factory: RunningFactory;
let storeMetricsPort: number;
let probeId: string;
const report: string[] = [];

beforeAll(async () => {
  storeMetricsPort = await freePort();
  env = await startFactoryOnS3({ tmpPrefix: 'fault-yaml-', perService: { 'schematic-store': { METRICS_PORT: String(storeMetricsPort) } } });
  factory = env.factory;
  const res = await fetch(`${factory.url}/schematics`, { method: 'POST', body: 'customization:\n  extraKernelArgs: [&a console=ttyS0, *a]\n' });
  expect(res.status).toBe(201);
  probeId = ((await res.json()) as { id: string }).id;
  // For comparison with the latencies under attack.
  const quiet: number[] = [];
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    await (await fetch(`${factory.url}/schematics/${probeId}`)).text();
    quiet.push(performance.now() - started);
  }
  report.push(`  lookups with no attack: max ${Math.max(...quiet).toFixed(1)} ms, median ${quiet.sort((a, b) => a - b)[10].toFixed(1)} ms`);
}, 180_000);

afterAll(async () => {
  process.stdout.write(`[fault-yaml]\n${report.join('\n')}\n`);
  await env?.stop();
});

/** `head` + as many `unit`s as fit in `size` bytes + `tail`. */
function fill(head: string, unit: string, tail: string, size: number): string {
  return head + unit.repeat(Math.floor((size - head.length - tail.length) / unit.length)) + tail;
}

/** Sequential `GET /schematics/<id>` (answered by the schematic-store) until `stop` resolves; their latencies. */
async function probeLookups(stop: Promise<unknown>): Promise<{ latencies: number[]; statuses: number[] }> {
  let stopped = false;
  void stop.finally(() => (stopped = true));
  const latencies: number[] = [];
  const statuses: number[] = [];
  while (!stopped) {
    const started = performance.now();
    const res = await fetch(`${factory.url}/schematics/${probeId}`, { signal: AbortSignal.timeout(60_000) });
    await res.text();
    latencies.push(performance.now() - started);
    statuses.push(res.status);
  }
  return { latencies, statuses };
}

async function postWhileProbing(name: string, body: string): Promise<{ status: number; text: string }> {
  const started = performance.now();
  const post = fetch(`${factory.url}/schematics`, { method: 'POST', body, signal: AbortSignal.timeout(150_000) }).then(async (res) => ({
    status: res.status,
    text: await res.text(),
    ms: performance.now() - started,
  }));
  // Keep probing a little after the answer: a frozen process would also delay the lookups queued behind it.
  const probe = probeLookups(post.then(() => new Promise((r) => setTimeout(r, 100))));
  const [answer, lookups] = await Promise.all([post, probe]);
  const maxLookup = Math.max(...lookups.latencies);
  report.push(
    `  ${name}: ${body.length} bytes -> ${answer.status} in ${answer.ms.toFixed(1)} ms; ${lookups.latencies.length} concurrent lookups, max ${maxLookup.toFixed(1)} ms: ${answer.text.trim().slice(0, 160)}`,
  );
  expect(lookups.statuses.every((s) => s === 200)).toBe(true);
  expect(answer.ms).toBeLessThan(ANSWER_MS);
  expect(maxLookup).toBeLessThan(LOOKUP_MS);
  return answer;
}

/** factory_jobs_processed_total of schematic.create on the schematic-store's metrics port, by outcome. */
async function createOutcomes(): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${storeMetricsPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^factory_jobs_processed_total\{([^}]*)\} (\S+)$/gm)) {
    if (!m[1].includes('job="schematic.create"')) continue;
    const outcome = /outcome="([^"]*)"/.exec(m[1])?.[1] ?? '';
    out[outcome] = Number(m[2]);
  }
  return out;
}

const aliasLimit = 'yaml: document contains excessive aliasing (more than 1000 aliases)';

test.each([
  ['the 40 KB alias bomb of issue 10 (10k aliases)', 'customization:\n  extraKernelArgs: [&a x' + ', *a'.repeat(10_000) + ']\n', aliasLimit],
  ['50k aliases', 'customization:\n  extraKernelArgs: [&a x' + ',*a'.repeat(50_000) + ']\n', aliasLimit],
  ['1 MiB of aliases (~350k)', fill('customization:\n  extraKernelArgs: [&a x', ',*a', ']\n', MiB - 1024), aliasLimit],
  ['1 MiB flow sequence (~500k items)', fill('customization:\n  extraKernelArgs: [', 'x,', 'x]\n', MiB - 1024), 'yaml: document is too large (more than 25000 YAML tokens)'],
  ['1 MiB of nesting', 'overlay:\n  options: ' + '['.repeat(500_000) + ']'.repeat(500_000) + '\n', 'yaml: exceeded max depth of 100'],
])('%s: 400 naming the limit, quickly, lookups keep answering, handled once', async (name, body, message) => {
  const before = await createOutcomes();
  const answer = await postWhileProbing(name, body);
  expect(answer.status).toBe(400);
  expect(answer.text).toContain(message);
  // The reply is a FactoryError: the job completed once with outcome 400, and no attempt failed (BullMQ retries those).
  const after = await createOutcomes();
  expect((after['400'] ?? 0) - (before['400'] ?? 0)).toBe(1);
  expect(after.error ?? 0).toBe(0);
});

test('a schematic with a few aliases is accepted with the ID of its written-out form', async () => {
  const res = await fetch(`${factory.url}/schematics`, { method: 'POST', body: 'customization:\n  extraKernelArgs: [console=ttyS0, console=ttyS0]\n' });
  expect(res.status).toBe(201);
  expect(((await res.json()) as { id: string }).id).toBe(probeId);
});
