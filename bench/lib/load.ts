/**
 * A load generator in its own process (so its CPU never competes inside the server's process):
 * `connections` clients, each sending its next GET as soon as the previous response ended, for
 * `duration` seconds; the summary as one JSON line on stdout. Engine "autocannon" (default) or
 * "http" (Node's http client with keep-alive: also reads bodies that end with the connection, as
 * Orthanc's study retrievals do, which autocannon never completes).
 * With `pathsFile` (a JSON array of paths; autocannon engine), each request takes a random path from it.
 * Run: node --import tsx bench/lib/load.ts '{"url":"http://…","headers":{},"connections":10,"duration":5}'
 */
import fs from 'node:fs';
import http from 'node:http';
import autocannon from 'autocannon';

interface LoadOptions {
  url: string;
  headers?: Record<string, string>;
  connections: number;
  duration: number;
  engine?: 'autocannon' | 'http';
  pathsFile?: string;
}

interface LoadSummary {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  total: number;
  sent: number;
  non2xx: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0;
}

/** Closed-loop clients over Node's http (keep-alive agent, one socket per client). */
async function httpLoad(o: LoadOptions): Promise<LoadSummary> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections });
  const end = Date.now() + o.duration * 1000;
  const lat: number[] = [];
  const s = { sent: 0, non2xx: 0, errors: 0 };
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      s.sent++;
      const req = http.get(o.url, { agent, headers: o.headers }, (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          if (res.statusCode! >= 200 && res.statusCode! < 300) lat.push(performance.now() - t0);
          else s.non2xx++;
          resolve();
        });
        res.on('error', () => (s.errors++, resolve()));
      });
      req.on('error', () => (s.errors++, resolve()));
    });
  const t0 = Date.now();
  await Promise.all(Array.from({ length: o.connections }, async () => {
    while (Date.now() < end) await one();
  }));
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { rps: lat.length / ((Date.now() - t0) / 1000), p50: Math.round(percentile(lat, 50)), p90: Math.round(percentile(lat, 90)), p99: Math.round(percentile(lat, 99)), total: lat.length, ...s };
}

const o = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
let out: LoadSummary;
if (o.engine === 'http') out = await httpLoad(o);
else {
  const paths = o.pathsFile ? (JSON.parse(fs.readFileSync(o.pathsFile, 'utf8')) as string[]) : undefined;
  const requests = paths ? [{ method: 'GET', setupRequest: (req: Record<string, unknown>) => ({ ...req, path: paths[Math.floor(Math.random() * paths.length)] }) }] : undefined;
  const r = await autocannon({ url: o.url, headers: o.headers ?? {}, connections: o.connections, duration: o.duration, ...(requests ? { requests } : {}) } as never);
  out = { rps: r.requests.average, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, total: r.requests.total, sent: r.requests.sent, non2xx: r.non2xx, errors: r.errors };
}
process.stdout.write(`${JSON.stringify(out)}\n`);
