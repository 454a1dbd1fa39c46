/** Types of scripts/build-ui.mjs for the TypeScript tests that build the page. */
export function buildUi(outDir?: string): Promise<string>;
