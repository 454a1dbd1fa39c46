/**
 * `mado-gateway import` as a real child process against a gateway listening on a port: folders are
 * walked, KOS and FHIR manifests sent to the right route, summary and exit codes as documented.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createTestApp, listenTestApp, type TestApp } from '../helpers/app.js';
import { conflicting, fhirManifest, kos, nextVersion } from './ingest-fixtures.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
let t: TestApp;
let base: string;
let close: () => void;
let dir: string;

before(async () => {
  t = await createTestApp();
  ({ base, close } = await listenTestApp(t));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-import-'));
});
after(async () => {
  close();
  fs.rmSync(dir, { recursive: true, force: true });
  await t.close();
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'import', ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('imports a folder tree: KOS and FHIR, duplicates, replacements, failures with reasons', { timeout: 120_000 }, async () => {
  const a = kos('cli-a');
  const b = kos('cli-b');
  const f = fhirManifest('cli-f');
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'a.dcm'), a.bytes);
  fs.writeFileSync(path.join(dir, 'sub', 'b-no-extension'), b.bytes); // DICM magic
  fs.writeFileSync(path.join(dir, 'sub', 'f.json'), f.json);
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'hello');
  const first = await cli([dir, '--url', base, '--concurrency', '2']);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  assert.match(first.stdout, /imported: 3 ok, 0 duplicate, 0 replaced, 0 rejection note\(s\) applied, 0 failed, 1 skipped/);
  assert.match(first.stderr, /^ok +.*a\.dcm$/m, 'plain progress lines when stderr is not a TTY');

  // again: duplicates; plus a new version (replaced) and a broken file and a conflict (failed)
  const bad = path.join(dir, 'broken.dcm');
  fs.writeFileSync(bad, Buffer.from('not dicom'));
  fs.writeFileSync(path.join(dir, 'sub', 'a2.dcm'), nextVersion(a).bytes);
  fs.writeFileSync(path.join(dir, 'sub', 'a-conflict.dcm'), conflicting(a).bytes);
  const second = await cli([dir, `--url=${base}/fhir/`]);
  assert.equal(second.code, 1, second.stdout);
  assert.match(second.stdout, /3 duplicate, 1 replaced/);
  assert.match(second.stdout, /2 failed/);
  assert.match(second.stdout, /broken\.dcm: 422 GW_DICOM_UNREADABLE/);
  assert.match(second.stdout, /a-conflict\.dcm: 409 GW_MANIFEST_CONFLICT/);
});

test('exit codes: 2 usage, 3 gateway unreachable, 1 missing path', async () => {
  assert.equal((await cli([])).code, 2);
  assert.equal((await cli([dir])).code, 2);
  assert.equal((await cli([dir, '--url', 'ftp://x'])).code, 2);
  assert.equal((await cli([dir, '--url', base, '--concurrency', '0'])).code, 2);
  const down = await cli([dir, '--url', 'http://127.0.0.1:9']);
  assert.equal(down.code, 3);
  assert.match(down.stderr, /cannot reach the gateway/);
  const missing = await cli([path.join(dir, 'nope'), '--url', base]);
  assert.equal(missing.code, 1);
  assert.match(missing.stdout, /nope: not found/);
});
