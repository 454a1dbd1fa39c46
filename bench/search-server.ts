/**
 * The app of bench/search.ts in its own process, so the load generator (autocannon) does not share
 * the server's event loop. Same wiring as `mado-gateway serve` (buildApp + listen), plus the
 * bench's switch to turn the audit recorder off. Prints `listening on URL`.
 * Env: DATABASE_URL, BENCH_AUDIT=on|off, GATEWAY_CONFIG (e.g. auth.jwt), PUBLIC_BASE_URL.
 */
import { buildApp, closeApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { createDb } from '../src/store/db.js';
import { NO_AUDIT } from './lib/no-audit.js';

const pass = (k: string) => (process.env[k] ? { [k]: process.env[k]! } : {});
const config = loadConfig({ DATABASE_URL: process.env.DATABASE_URL!, LOG_LEVEL: 'silent', PORT: '0', ...pass('GATEWAY_CONFIG'), ...pass('PUBLIC_BASE_URL') });
const db = createDb({ url: config.databaseUrl!, poolMax: Number(process.env.BENCH_POOL_MAX ?? 20) });
const { app } = buildApp({ config, db, log: createLogger('silent'), version: 'bench' }, process.env.BENCH_AUDIT === 'off' ? NO_AUDIT : {});
const server = app.listen(0, '127.0.0.1', () => {
  const a = server.address() as { port: number };
  console.log(`listening on http://127.0.0.1:${a.port}`);
});
process.once('SIGTERM', () => {
  server.close();
  void closeApp(app)
    .then(() => db.destroy())
    .then(() => process.exit(0));
});
