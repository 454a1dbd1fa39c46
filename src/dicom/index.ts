/**
 * KOS codec public API. The only module tree that reads or writes DICOM bytes.
 *
 * Decisions (details at each file's head):
 * - Reading and writing use our own bounded codec (part10.ts, writer.ts), not dcmjs: hostile-input
 *   limits (nesting ≤ 64, inflate cap, item cap, every length checked), ISO 2022 decoding from raw
 *   bytes (dcmjs 0.51.1 throws on multi-valued ISO 2022 sets), and no silent truncation on write.
 *   dcmjs is a dev dependency: the benches compare against it (bench/kos.ts, bench/convert.ts).
 * - readKos never throws; issues with severity 'error' mean "not a usable manifest". Key Image Notes
 *   and rejection notes (CID 7011: 113001, 113037, 113038, 113039) still return kind + manifest.
 * - Retrieve Location UID (R+): error when neither it nor a Retrieve URL is present, warning when
 *   only the URL is present, warning when it is not an OID (decisions.md D19).
 * - writeKos(m) emits normalizeForWrite(m): read(write(m)) deep-equals normalizeForWrite(m), which fills
 *   only KOS-mandatory defaults (counts, study modalities, Other Patient IDs incl. the primary id with
 *   Type of Patient ID TEXT, code meanings, KO series UID derived from the SOP Instance UID, title,
 *   content date/time = now when absent). It throws KosWriteError on values a KOS cannot carry
 *   (over-long values, non-UID in UI such as Retrieve Location UID "ACME", bad DA/TM, non-manifest title).
 */
export { readKos, readDicomIdentity, intOf } from './reader.js';
export type { ReadKosOptions, KosReadResult, DicomIdentity } from './reader.js';
export { validateManifestModel } from './validate.js';
export { writeKos, KosWriteError, normalizeForWrite, valueTypeFor } from './writer.js';
export type { WriteKosOptions } from './writer.js';
export { newUid, UID_PATTERN, isValidUid, derivedUid } from './uid.js';
export { syntheticManifest } from './synthetic.js';
export type { SyntheticOptions } from './synthetic.js';
export { classifyTitle, TITLE_MANIFEST_WITH_DESCRIPTION, KOS_SOP_CLASS_UID } from './codes.js';
