/**
 * Shared by bench/wado.ts and bench/proxy-floor.ts: a generated multi-frame study stored in a real
 * Orthanc, and CPU accounting helpers.
 */
import fs from 'node:fs';
import { syntheticManifest } from '../src/dicom/index.js';
import { derivedUid } from '../src/dicom/uid.js';
import type { Manifest } from '../src/model/manifest.js';
import type { Orthanc } from '../test/helpers/orthanc.js';

export const MF_CLASS = '1.2.840.10008.5.1.4.1.1.7.2'; // Multi-frame Grayscale Byte SC

// A minimal valid multi-frame instance (Explicit VR LE), built in memory
function el(g: number, e: number, vr: string, value: Buffer | string): Buffer {
  let v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  if (v.length % 2) v = Buffer.concat([v, Buffer.from([vr === 'UI' || vr === 'OB' ? 0 : 0x20])]);
  const long = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(g, 0);
  h.writeUInt16LE(e, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(v.length, 8);
  else h.writeUInt16LE(v.length, 6);
  return Buffer.concat([h, v]);
}
const us = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};

export function instance(o: { study: string; series: string; sop: string; seriesNumber: number; number: number; rows: number; frames: number }): Buffer {
  const metaBody = Buffer.concat([el(2, 1, 'OB', Buffer.from([0, 1])), el(2, 2, 'UI', MF_CLASS), el(2, 3, 'UI', o.sop), el(2, 0x10, 'UI', '1.2.840.10008.1.2.1'), el(2, 0x12, 'UI', '1.2.826.0.1.3680043.10.1')]);
  const gl = Buffer.alloc(4);
  gl.writeUInt32LE(metaBody.length);
  const pixels = Buffer.alloc(o.rows * o.rows * o.frames);
  for (let i = 0; i < pixels.length; i += 4096) pixels[i] = (i / 4096 + o.number) & 0xff;
  const ds = Buffer.concat([
    el(8, 0x16, 'UI', MF_CLASS), el(8, 0x18, 'UI', o.sop), el(8, 0x20, 'DA', '20250101'), el(8, 0x30, 'TM', '120000'), el(8, 0x50, 'SH', 'BENCH'),
    el(8, 0x60, 'CS', 'OT'), el(8, 0x64, 'CS', 'WSD'), el(0x10, 0x10, 'PN', 'Bench^Patient'), el(0x10, 0x20, 'LO', 'BENCH-1'),
    el(0x20, 0x0d, 'UI', o.study), el(0x20, 0x0e, 'UI', o.series), el(0x20, 0x11, 'IS', String(o.seriesNumber)), el(0x20, 0x13, 'IS', String(o.number)),
    el(0x28, 0x02, 'US', us(1)), el(0x28, 0x04, 'CS', 'MONOCHROME2'), el(0x28, 0x08, 'IS', String(o.frames)),
    el(0x28, 0x10, 'US', us(o.rows)), el(0x28, 0x11, 'US', us(o.rows)), el(0x28, 0x100, 'US', us(8)), el(0x28, 0x101, 'US', us(8)), el(0x28, 0x102, 'US', us(7)), el(0x28, 0x103, 'US', us(0)),
    el(0x7fe0, 0x10, 'OB', pixels),
  ]);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el(2, 0, 'UL', gl), metaBody, ds]);
}

export interface StudySpec {
  key: string;
  study: string;
  series: Array<{ uid: string; sops: string[] }>;
}

export async function makeStudy(orthanc: Orthanc, key: string, nSeries: number, perSeries: number, rows: number, frames: number): Promise<{ spec: StudySpec; bytes: number }> {
  const study = derivedUid(`bench-wado:${key}:study`);
  const spec: StudySpec = { key, study, series: [] };
  let bytes = 0;
  let n = 0;
  for (let s = 0; s < nSeries; s++) {
    const se = { uid: derivedUid(`bench-wado:${key}:series:${s}`), sops: [] as string[] };
    for (let i = 0; i < perSeries; i++) {
      const sop = derivedUid(`bench-wado:${key}:sop:${s}:${i}`);
      const buf = instance({ study, series: se.uid, sop, seriesNumber: s + 1, number: ++n, rows, frames });
      bytes += buf.length;
      await orthanc.upload(buf);
      se.sops.push(sop);
    }
    spec.series.push(se);
  }
  return { spec, bytes };
}

/** A manifest referencing the stored study, its series retrievable from `dicomweb`. */
export function manifestFor(spec: StudySpec, dicomweb: string): Manifest {
  const m = syntheticManifest({ series: 1, instancesPerSeries: 1, seed: `bench-wado-${spec.key}` });
  m.study = { ...m.study, studyInstanceUid: spec.study, requests: [], modalities: ['OT'], numberOfSeries: spec.series.length };
  m.evidence = [
    {
      studyInstanceUid: spec.study,
      series: spec.series.map((se, i) => ({
        uid: se.uid,
        modality: 'OT',
        number: i + 1,
        retrieveUrl: `${dicomweb}/studies/${spec.study}/series/${se.uid}`,
        retrieveLocationUid: '1.2.826.0.1.3680043.10.1.2',
        retrieveAeTitle: 'ORTHANC',
        numberOfInstances: se.sops.length,
        instances: se.sops.map((sop, k) => ({ sopClassUid: MF_CLASS, sopInstanceUid: sop, number: k + 1 })),
      })),
    },
  ];
  return m;
}

export const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** utime + stime of a process in ms (/proc/PID/stat fields 14 and 15, clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * 10;
}


/** Minor page faults of a process so far (/proc/PID/stat field 10). */
export function minFaults(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[7]);
}
