/**
 * A load generator in its own process (so its CPU never competes inside the server's process):
 * autocannon against one URL, the summary as one JSON line on stdout.
 * Run: node --import tsx bench/lib/load.ts '{"url":"http://…","headers":{},"connections":10,"duration":5}'
 */
import autocannon from 'autocannon';

const o = JSON.parse(process.argv[2] ?? '{}') as { url: string; headers?: Record<string, string>; connections: number; duration: number };
const r = await autocannon({ url: o.url, headers: o.headers ?? {}, connections: o.connections, duration: o.duration });
process.stdout.write(`${JSON.stringify({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, total: r.requests.total, sent: r.requests.sent, non2xx: r.non2xx, errors: r.errors })}\n`);
