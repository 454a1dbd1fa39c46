/**
 * A load generator in its own process (so its CPU never competes inside the server's process):
 * autocannon against one URL, the summary as one JSON line on stdout.
 * With `pathsFile` (a JSON array of paths), each request takes a random path from it.
 * Run: node --import tsx bench/lib/load.ts '{"url":"http://…","headers":{},"connections":10,"duration":5}'
 */
import fs from 'node:fs';
import autocannon from 'autocannon';

const o = JSON.parse(process.argv[2] ?? '{}') as { url: string; headers?: Record<string, string>; connections: number; duration: number; pathsFile?: string };
const paths = o.pathsFile ? (JSON.parse(fs.readFileSync(o.pathsFile, 'utf8')) as string[]) : undefined;
const requests = paths ? [{ method: 'GET', setupRequest: (req: Record<string, unknown>) => ({ ...req, path: paths[Math.floor(Math.random() * paths.length)] }) }] : undefined;
const r = await autocannon({ url: o.url, headers: o.headers ?? {}, connections: o.connections, duration: o.duration, ...(requests ? { requests } : {}) } as never);
process.stdout.write(`${JSON.stringify({ rps: r.requests.average, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, total: r.requests.total, sent: r.requests.sent, non2xx: r.non2xx, errors: r.errors })}\n`);
