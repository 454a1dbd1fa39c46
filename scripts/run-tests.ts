/**
 * `npm test`: one embedded PostgreSQL for the whole run on a free port (each test file then
 * creates its own database, test/helpers/db.ts), then node's test runner over every test file.
 * Extra arguments select files: `npm test -- test/unit/config.test.ts`. A test still running after
 * 10 minutes fails by name (--test-timeout) rather than holding CI until its own limit.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPg } from '../src/store/embedded-pg.js';

function collect(dir: string, suffix: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f.endsWith(suffix)).sort().map((f) => path.join(dir, f));
}

const args = process.argv.slice(2);
const files = args.length ? args : [...collect('test/unit', '.test.ts'), ...collect('test/integration', '.int.test.ts')];
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-test-pg-'));
fs.chmodSync(base, 0o755);
const t0 = Date.now();
const pg = await startEmbeddedPg({ baseDir: base, ephemeral: true });
console.log(`# embedded PostgreSQL on port ${pg.port} (${Date.now() - t0} ms)`);

let cleaned = false;
const cleanup = async () => {
  if (cleaned) return;
  cleaned = true;
  await pg.stop();
  fs.rmSync(base, { recursive: true, force: true });
};

const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-timeout=600000', `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`, ...files],
  { stdio: 'inherit', env: { ...process.env, TEST_DATABASE_URL: pg.url('postgres'), LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' } },
);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
const code: number = await new Promise((resolve) => child.on('close', (c, s) => resolve(c ?? (s ? 1 : 0))));
await cleanup();
process.exit(code);
