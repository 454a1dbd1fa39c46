/**
 * One study's metadata → its manifest as KOS bytes: every series' WADO-RS metadata read and fed
 * to the builder one document at a time, then written by the gateway's one KOS writer. Runs on
 * the main thread or in a publish worker (workers.ts); errors are thrown as they arise
 * (PublishRefusal, KosWriteError, GatewayError for the upstream) and mapped by the caller.
 */
import { newUid, writeKos } from '../dicom/index.js';
import { ManifestBuilder, type BuildOptions, type DicomJson } from './build.js';
import type { DicomwebSource } from './source.js';

/** The study's QIDO-RS records, read before its metadata. */
export interface StudyRead {
  studyUid: string;
  study: DicomJson;
  series: DicomJson[];
}

export interface ComposedKos {
  bytes: Uint8Array;
  /** Instances referenced by the manifest */
  instances: number;
}

export async function composeKos(src: DicomwebSource, read: StudyRead, options: BuildOptions): Promise<ComposedKos> {
  const b = new ManifestBuilder(read.studyUid, options);
  b.setStudy(read.study);
  for (const se of read.series) {
    const sink = b.beginSeries(se);
    for await (const doc of src.metadata(read.studyUid, String(se['0020000E']?.Value?.[0] ?? ''))) sink(doc);
  }
  return { bytes: writeKos(b.finish(newUid(), new Date())), instances: b.instances };
}
