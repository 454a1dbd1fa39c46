/**
 * A configured app on a fresh test database, built with the production config loader plus
 * overrides (so test config cannot drift from production).
 */
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { buildApp, closeApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createTestDb, type TestDb } from './db.js';

export interface TestApp {
  app: ReturnType<typeof buildApp>['app'];
  config: Readonly<Config>;
  tdb: TestDb;
  /** Every log line written so far (JSON strings) */
  logs: string[];
  close: () => Promise<void>;
}

/** Listen on a free loopback port (for clients that need a real URL); returns its base URL. */
export async function listenTestApp(t: TestApp): Promise<{ base: string; close: () => Promise<void> }> {
  const server = t.app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const close = async () => {
    server.closeAllConnections(); // kept-alive client sockets would hold close() open
    await new Promise((r) => server.close(r));
  };
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close };
}

export async function createTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const tdb = await createTestDb();
  const config = loadConfig({ PUBLIC_BASE_URL: 'http://gateway.test', DATABASE_URL: tdb.url, LOG_LEVEL: 'debug', ...env });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const log = createLogger(config.logLevel, sink);
  const { app } = buildApp({ config, db: tdb.db, log, version: 'test' });
  // closeApp flushes queued AuditEvents before the database goes away.
  return { app, config, tdb, logs, close: async () => { await closeApp(app); await tdb.drop(); } };
}
