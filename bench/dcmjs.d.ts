// dcmjs ships no TypeScript types. Only the benches import it (the KOS and conversion baselines).
declare module 'dcmjs';
