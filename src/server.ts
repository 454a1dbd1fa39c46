/**
 * Start-up and shutdown of the service: database (embedded or DATABASE_URL) → migrations (under
 * an advisory lock) → HTTP listener. Shutdown: stop accepting, drain in-flight requests for at
 * most limits.shutdownGraceMs, close the pool, stop the embedded PostgreSQL.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { buildApp, packageVersion } from './app.js';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { createDb, type Db } from './store/db.js';
import { startEmbeddedPg, type EmbeddedPg } from './store/embedded-pg.js';
import { migrateLatest } from './store/migrate.js';

export interface RunningServer {
  server: Server;
  db: Db;
  url: string;
  close: () => Promise<void>;
}

export async function openDatabase(config: Readonly<Config>, log: Logger): Promise<{ db: Db; embedded?: EmbeddedPg }> {
  let embedded: EmbeddedPg | undefined;
  let url = config.databaseUrl;
  if (!url) {
    const t0 = Date.now();
    embedded = await startEmbeddedPg({ baseDir: path.join(config.dataDir, 'pg'), log: (m) => log.debug({ pg: m.slice(0, 500) }, 'embedded postgres') });
    // The cluster's default database is used directly; nothing else runs in it.
    url = embedded.url('postgres');
    log.info({ port: embedded.port, ms: Date.now() - t0 }, 'embedded PostgreSQL started');
  }
  const db = createDb({ url });
  return { db, embedded };
}

export async function startServer(config: Readonly<Config>, log: Logger): Promise<RunningServer> {
  const { db, embedded } = await openDatabase(config, log);
  try {
    const { applied } = await migrateLatest(db);
    if (applied.length) log.info({ applied }, 'migrations applied');
    const { app } = buildApp({ config, db, log, version: packageVersion() });
    const server = app.listen(config.port, config.host);
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    server.requestTimeout = config.limits.requestTimeoutMs;
    server.headersTimeout = Math.min(60_000, config.limits.requestTimeoutMs);
    server.keepAliveTimeout = 65_000;
    const { port } = server.address() as AddressInfo;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `http://${host}:${port}`;

    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        const drained = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), config.limits.shutdownGraceMs);
        await drained;
        clearTimeout(timer);
        await db.destroy();
        await embedded?.stop();
      })());
    return { server, db, url, close };
  } catch (err) {
    await db.destroy().catch(() => {});
    await embedded?.stop();
    throw err;
  }
}
