// dcmjs ships no TypeScript types (toolchain.md §3). Only src/dicom/ and the KOS bench import it.
declare module 'dcmjs';
