/**
 * DICOM instances for content-creator tests and the publish bench, made by pydicom
 * (test/helpers/make_instances.py; Debian python3-pydicom). `restamp` copies a template file with
 * new Study / Series / SOP Instance UIDs of the same length (so no length field changes): the bench
 * makes tens of thousands of instances from a few pydicom files that way.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface InstanceSpec {
  modality: string;
  study: string;
  series: string;
  sop: string;
  seriesNumber: number;
  instanceNumber: number;
  patientId: string;
  patientName?: string;
  issuer?: string;
  issuerUid?: string;
  studyDate?: string;
  accession?: string;
  bodyPart?: string;
  frames?: number;
}

const SCRIPT = path.join(import.meta.dirname, 'make_instances.py');
/** Debian's python3 (where apt's python3-pydicom lives), not whatever python3 comes first on PATH. */
export const PYTHON = process.env.PYTHON ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

/** Why pydicom cannot run here, or undefined. */
export function pydicomUnavailable(): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import pydicom'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : 'python3 with pydicom not installed (apt-get install python3-pydicom)';
}

export function makeInstances(specs: InstanceSpec[]): Buffer[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pydicom-'));
  try {
    const list = specs.map((s, i) => ({ ...s, file: path.join(dir, `${i}.dcm`) }));
    const r = spawnSync(PYTHON, [SCRIPT], { input: JSON.stringify(list), encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`make_instances.py failed: ${r.stderr.slice(-1500)}`);
    return list.map((s) => fs.readFileSync(s.file));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Replace every occurrence of each `from` UID by its `to` (same length) in a copy of `template`. */
export function restamp(template: Buffer, map: Array<[from: string, to: string]>): Buffer {
  const out = Buffer.from(template);
  for (const [from, to] of map) {
    if (from.length !== to.length) throw new Error('restamp needs UIDs of equal length');
    const f = Buffer.from(from, 'latin1');
    const t = Buffer.from(to, 'latin1');
    for (let at = out.indexOf(f); at >= 0; at = out.indexOf(f, at + f.length)) t.copy(out, at);
  }
  return out;
}

/** A UID of exactly `len` characters: `prefix` + zero-padded decimal `n` (no leading zero component). */
export function fixedUid(prefix: string, n: number, len = 48): string {
  const digits = len - prefix.length - 1;
  return `${prefix}.1${String(n).padStart(digits - 1, '0')}`;
}
