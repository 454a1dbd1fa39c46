/**
 * The registry of FHIR resource types, interactions and search parameters the gateway implements.
 * Routes, search planning, the CapabilityStatement and CONFORMANCE.md all read this table.
 * A capability is added here only together with the code that implements it.
 */
export type SearchParamType = 'token' | 'reference' | 'date' | 'string' | 'uri' | 'number' | 'quantity' | 'composite' | 'special';

export interface SearchParamDef {
  name: string;
  type: SearchParamType;
  definition?: string;
  documentation?: string;
  /** Modifiers accepted for this parameter (besides none) */
  modifiers?: string[];
}

export type Interaction = 'read' | 'vread' | 'update' | 'patch' | 'delete' | 'history-instance' | 'history-type' | 'create' | 'search-type';

export interface ResourceDef {
  type: string;
  profile?: string;
  supportedProfiles?: string[];
  interactions: Interaction[];
  searchParams: SearchParamDef[];
  searchInclude?: string[];
  searchRevInclude?: string[];
}

/** Mutable during module initialisation only (each feature module registers itself). */
export const resourceRegistry: ResourceDef[] = [];

export function registerResource(def: ResourceDef): void {
  const existing = resourceRegistry.findIndex((r) => r.type === def.type);
  if (existing >= 0) resourceRegistry[existing] = def;
  else resourceRegistry.push(def);
  resourceRegistry.sort((a, b) => a.type.localeCompare(b.type));
}

export function findResource(type: string): ResourceDef | undefined {
  return resourceRegistry.find((r) => r.type === type);
}
