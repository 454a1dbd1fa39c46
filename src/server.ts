/**
 * Start-up and shutdown of the service: database (embedded or DATABASE_URL) → migrations (under
 * an advisory lock) → HTTP listener. Shutdown: stop accepting, drain in-flight requests for at
 * most limits.shutdownGraceMs, close the pool, stop the embedded PostgreSQL.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { buildApp, closeApp, packageVersion } from './app.js';
import { serverClasses } from './http/fast-lane.js';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { createDb, type Db } from './store/db.js';
import { startEmbeddedPg, type EmbeddedPg } from './store/embedded-pg.js';
import { migrateLatest } from './store/migrate.js';
import { upstreamRegistryOf } from './dicomweb/index.js';
import { publisherFor } from './publish/service.js';
import { PublishDaemon } from './publish/watch.js';

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
    // The memory settings sized from this machine (store/pg-tuning.ts), in MB: visible at start.
    log.info({ port: embedded.port, ms: Date.now() - t0, memoryMB: Math.round(os.totalmem() / 2 ** 20), settingsMB: embedded.settings }, 'embedded PostgreSQL started');
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
    // Content creator background work (watch mode, forward retries): after the app, which owns the upstream pools
    const daemon = new PublishDaemon(publisherFor({ db, config, log, registry: upstreamRegistryOf(config) }), db, config, log);
    daemon.start();
    const tls = config.auth.mtls;
    // mTLS: the gateway terminates TLS itself and asks for a client certificate. Clients
    // without one may still authenticate with a token (rejectUnauthorized: false); the certificate
    // counts only when the TLS layer verified it against the CA (src/auth/authenticate.ts).
    const server: Server = tls
      ? https
          .createServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile), ca: readFileSync(tls.caFile), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2', ...serverClasses(app) }, app)
          .listen(config.port, config.host)
      : app.listen(config.port, config.host);
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    server.requestTimeout = config.limits.requestTimeoutMs;
    server.headersTimeout = Math.min(60_000, config.limits.requestTimeoutMs);
    server.keepAliveTimeout = 65_000;
    const { port } = server.address() as AddressInfo;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `${tls ? 'https' : 'http'}://${host}:${port}`;

    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        const drained = new Promise<void>((resolve) => server.close(() => resolve()));
        // Keep-alive sockets become idle as their last response ends: close them as they do, and
        // tell clients not to reuse a connection, so the drain ends with the last response.
        server.prependListener('request', (_req, res) => res.setHeader('Connection', 'close'));
        server.closeIdleConnections();
        const idle = setInterval(() => server.closeIdleConnections(), 100);
        const timer = setTimeout(() => server.closeAllConnections(), config.limits.shutdownGraceMs);
        drained.finally(() => clearInterval(idle));
        await daemon.stop();
        await drained;
        clearTimeout(timer);
        await closeApp(app).catch((err: Error) => log.error({ err: err.message }, 'audit flush on shutdown failed'));
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
