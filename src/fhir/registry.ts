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

/** A parameter of a transaction the server implements that it does not support (listed as such). */
export interface UnsupportedSearchParam {
  name: string;
  type: SearchParamType;
  definition?: string;
  /** Why, for the CapabilityStatement and CONFORMANCE.md */
  reason: string;
}

export type Interaction = 'read' | 'vread' | 'update' | 'patch' | 'delete' | 'history-instance' | 'history-type' | 'create' | 'search-type';

export interface ResourceDef {
  type: string;
  profile?: string;
  supportedProfiles?: string[];
  interactions: Interaction[];
  searchParams: SearchParamDef[];
  /** Ignored with a warning (400 under Prefer: handling=strict); stated in the CapabilityStatement */
  unsupportedSearchParams?: UnsupportedSearchParam[];
  searchInclude?: string[];
  searchRevInclude?: string[];
  /** Type-level operations ($name) */
  operations?: OperationDef[];
}

export interface OperationDef {
  name: string;
  definition: string;
  documentation: string;
}

/** Mutable during module initialisation only (each feature module registers itself). */
export const resourceRegistry: ResourceDef[] = [];

export function registerResource(def: ResourceDef): void {
  const existing = resourceRegistry.findIndex((r) => r.type === def.type);
  if (existing >= 0) {
    // Several features serve one type (e.g. read/search and create): keep every interaction.
    const before = resourceRegistry[existing]!;
    const merged = [...new Set([...before.interactions, ...def.interactions])];
    const operations = [...(before.operations ?? []), ...(def.operations ?? [])].filter((o, i, all) => all.findIndex((x) => x.name === o.name) === i);
    resourceRegistry[existing] = { ...def, interactions: merged, ...(operations.length ? { operations } : {}) };
  } else resourceRegistry.push(def);
  resourceRegistry.sort((a, b) => a.type.localeCompare(b.type));
}

/** Add interactions to a type, creating a bare definition when no feature registered it yet. */
export function addInteractions(type: string, interactions: Interaction[]): void {
  const def = findResource(type);
  if (def) def.interactions = [...new Set([...def.interactions, ...interactions])];
  else registerResource({ type, interactions: [...interactions], searchParams: [] });
}

/** Declare a type-level operation (CapabilityStatement rest.resource.operation). */
export function addOperation(type: string, op: OperationDef): void {
  if (!findResource(type)) registerResource({ type, interactions: [], searchParams: [] });
  const def = findResource(type)!;
  def.operations = [...(def.operations ?? []).filter((o) => o.name !== op.name), op];
}

export function findResource(type: string): ResourceDef | undefined {
  return resourceRegistry.find((r) => r.type === type);
}
