/**
 * What the upstream shows of a study without reading its instances' metadata: the study's QIDO-RS
 * record, its series' QIDO-RS records (each with Number of Series Related Instances, PS3.18
 * §10.6.3.3.2) and the settings a manifest is built with. Equal fingerprints mean a re-built
 * manifest would reference the same series with the same instance counts and the same study,
 * patient and series attributes, so a re-publish can answer "unchanged" after two QIDO-RS
 * requests instead of reading every metadata document (decisions.md D140). Pure.
 */
import { hash } from 'node:crypto';
import { canonical, str, type BuildOptions, type DicomJson } from './build.js';

/** The RetrieveURL (0008,1190) names the upstream's own address, which the manifest never uses. */
const IGNORED = new Set(['00081190']);

function record(ds: DicomJson): DicomJson {
  const out: DicomJson = {};
  for (const [tag, v] of Object.entries(ds)) if (!IGNORED.has(tag)) out[tag] = v;
  return out;
}

export function studyFingerprint(upstream: string, options: BuildOptions, study: DicomJson, series: DicomJson[]): string {
  const bySeriesUid = [...series].sort((a, b) => {
    const x = str(a, '0020000E') ?? '';
    const y = str(b, '0020000E') ?? '';
    return x < y ? -1 : x > y ? 1 : 0;
  });
  return hash('sha256', canonical([1, upstream, options, record(study), bySeriesUid.map(record)]), 'base64url');
}

/** True when every series record carries its instance count (without it the fingerprint says too little). */
export function countsKnown(series: DicomJson[]): boolean {
  return series.length > 0 && series.every((s) => str(s, '00201209') !== undefined);
}
