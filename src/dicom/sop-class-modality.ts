/**
 * The Modality (0008,0060) a Storage SOP Class implies, for a manifest whose Image Library gives
 * no modality: the IOD of each SOP Class (PS3.4 Table B.5-1) fixes the modality through its
 * module's Enumerated Value (PS3.3, e.g. C.8.2.1 CT Image "CT", C.8.3.1 MR Image "MR",
 * C.17.1 SR Document Series "SR", C.17.6.1 Key Object Document Series "KO"). SOP Classes whose
 * IOD allows any modality (Secondary Capture, Raw Data, Parametric Map, …) are not listed: their
 * modality is unknowable from the class alone.
 */

const P = '1.2.840.10008.5.1.4.1.1.';

const BY_CLASS: Record<string, string> = {
  // projection radiography and mammography (PS3.3 A.2, A.26, A.27, A.28)
  '1': 'CR', '1.1': 'DX', '1.1.1': 'DX', '1.2': 'MG', '1.2.1': 'MG', '1.3': 'IO', '1.3.1': 'IO',
  '13.1.1': 'XA', '13.1.2': 'DX', '13.1.3': 'MG', '13.1.4': 'MG', '13.1.5': 'MG',
  '12.1': 'XA', '12.1.1': 'XA', '12.2': 'RF', '12.2.1': 'RF',
  // cross-sectional
  '2': 'CT', '2.1': 'CT', '2.2': 'CT', '4': 'MR', '4.1': 'MR', '4.2': 'MR', '4.3': 'MR', '4.4': 'MR',
  '3.1': 'US', '6.1': 'US', '6.2': 'US', '20': 'NM', '128': 'PT', '128.1': 'PT', '130': 'PT',
  // visible light and ophthalmology (PS3.3 A.32)
  '77.1.1': 'ES', '77.1.1.1': 'ES', '77.1.2': 'GM', '77.1.2.1': 'GM', '77.1.3': 'SM', '77.1.4': 'XC', '77.1.4.1': 'XC',
  '77.1.5.1': 'OP', '77.1.5.2': 'OP', '77.1.5.4': 'OPT', '77.1.6': 'SM',
  // waveforms (PS3.3 A.34)
  '9.1.1': 'ECG', '9.1.2': 'ECG', '9.1.3': 'ECG', '9.2.1': 'HD', '9.3.1': 'EPS', '9.4.1': 'AU',
  // radiotherapy (PS3.3 A.17–A.21)
  '481.1': 'RTIMAGE', '481.2': 'RTDOSE', '481.3': 'RTSTRUCT', '481.4': 'RTRECORD', '481.5': 'RTPLAN',
  // derived objects
  '66.1': 'REG', '66.2': 'FID', '66.3': 'REG', '66.4': 'SEG', '66.5': 'SEG',
  '11.1': 'PR', '11.2': 'PR', '11.3': 'PR', '11.4': 'PR', '11.5': 'PR', '11.6': 'PR', '11.7': 'PR', '11.8': 'PR',
  '104.1': 'DOC', '104.2': 'DOC', '104.3': 'M3D', '104.4': 'M3D', '104.5': 'M3D',
  // structured reports; the Key Object Selection Document is KO (PS3.3 C.17.6.1)
  '88.11': 'SR', '88.22': 'SR', '88.33': 'SR', '88.34': 'SR', '88.35': 'SR', '88.40': 'SR', '88.50': 'SR',
  '88.59': 'KO', '88.65': 'SR', '88.67': 'SR', '88.68': 'SR', '88.69': 'SR', '88.70': 'SR', '88.71': 'SR',
  '88.72': 'SR', '88.73': 'SR', '88.74': 'SR', '88.75': 'SR', '88.76': 'SR',
};

/** The modality a Storage SOP Class implies, or undefined when its IOD does not fix one. */
export function modalityOfSopClass(sopClassUid: string | undefined): string | undefined {
  if (!sopClassUid?.startsWith(P)) return undefined;
  return BY_CLASS[sopClassUid.slice(P.length)];
}

/** A series' modality from its instances' SOP Classes: the first one that implies a modality. */
export function modalityOfSopClasses(sopClassUids: Iterable<string | undefined>): string | undefined {
  for (const uid of sopClassUids) {
    const m = modalityOfSopClass(uid);
    if (m) return m;
  }
  return undefined;
}

/** Every SOP Class → modality pair (for SQL back-fills of rows indexed before this table). */
export function sopClassModalityPairs(): Array<[string, string]> {
  return Object.entries(BY_CLASS).map(([k, v]) => [P + k, v]);
}
