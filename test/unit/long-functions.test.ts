/**
 * No function in src/ is longer than 80 lines (from the line of its body's `{` to its `}`):
 * scripts/long-functions.ts lists them (function declarations, methods, arrow functions with a
 * block body). Flat tables are not functions and need no exception; ALLOWED would name any.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { longFunctions, longFunctionsIn } from '../../scripts/long-functions.js';

const MAX = 80;
/** "file:name" of functions allowed to be longer, each with its reason (none today). */
const ALLOWED = new Map<string, string>();

test(`no function in src/ over ${MAX} lines`, () => {
  const found = longFunctions(MAX).filter((f) => !ALLOWED.has(`${f.file}:${f.name}`));
  assert.deepEqual(found.map((f) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`), []);
});

test('the scanner counts declarations, methods and arrows, and is not fooled by braces in strings, templates, regexes or comments', () => {
  const body = (n: number) => Array.from({ length: n }, (_, i) => `  x += ${i}; // }`).join('\n');
  const src = [
    `export function declared(a: { b: string } = { b: '}' }): { c: number } {\n${body(85)}\n}`,
    `class K {\n  method(x: number): void {\n${body(90)}\n  }\n}`,
    `const arrow = async (y: string) => {\n  const t = \`\${'{'}\${y}}\`; const r = /[{]/;\n${body(81)}\n};`,
    `function short() {\n${body(10)}\n}`,
    `if (x) {\n${body(100)}\n}`,
  ].join('\n');
  const names = longFunctionsIn(src, 'fixture.ts', MAX).map((f) => f.name).sort();
  assert.deepEqual(names, ['arrow', 'declared', 'method']);
});
