/**
 * KOS codec public API (issue 3). The only module tree that reads or writes DICOM bytes.
 * Reader/writer are our own bounded codec (part10.ts, writer.ts); see README notes in those files.
 */
export { readKos, readDicomIdentity, intOf } from './reader.js';
export type { ReadKosOptions, KosReadResult, DicomIdentity } from './reader.js';
export { validateManifestModel } from './validate.js';
export { writeKos, KosWriteError, normalizeForWrite, valueTypeFor } from './writer.js';
export type { WriteKosOptions } from './writer.js';
export { newUid, UID_PATTERN, isValidUid, derivedUid } from './uid.js';
export { syntheticManifest } from './synthetic.js';
export type { SyntheticOptions } from './synthetic.js';
export { classifyTitle, TITLE_MANIFEST_WITH_DESCRIPTION, KOS_SOP_CLASS } from './codes.js';
