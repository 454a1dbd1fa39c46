/**
 * Lists functions in src/ longer than a limit (default 80 lines, counted from the line of the
 * body's `{` to the line of its `}`): function declarations, methods and arrow functions with a
 * block body. A small scanner, not a parser: strings, template literals, comments and regular
 * expressions are skipped so their braces do not count.
 * Run: npx tsx scripts/long-functions.ts [max]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LongFunction {
  file: string;
  name: string;
  line: number;
  lines: number;
}

const NOT_FUNCTIONS = new Set(['if', 'for', 'while', 'switch', 'catch', 'with', 'return', 'await']);
const REGEX_AFTER = new Set(['(', ',', '=', ':', '[', '!', '&', '|', '?', '{', '}', ';', '+', '-', '*', '%', '<', '>', '~', '^', '']);

/** Text with strings, templates, comments and regex literals blanked (newlines kept). */
function blank(src: string): string {
  const out = src.split('');
  const wipe = (a: number, b: number) => {
    for (let k = a; k < b; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  const stack: number[] = []; // brace depth at each open `${`
  let depth = 0;
  let i = 0;
  let prev = '';
  const template = (from: number): number => {
    // from: index just after a backtick or after the `}` closing a `${…}`; returns the index after the closing backtick, or of a `${`
    let j = from;
    while (j < src.length && src[j] !== '`') {
      if (src[j] === '\\') j++;
      else if (src[j] === '$' && src[j + 1] === '{') {
        wipe(from, j);
        stack.push(depth);
        depth++;
        return j + 2;
      }
      j++;
    }
    wipe(from, j);
    return j + 1;
  };
  while (i < src.length) {
    const c = src[i]!;
    const two = src.slice(i, i + 2);
    if (two === '//') {
      const e = src.indexOf('\n', i);
      wipe(i, e < 0 ? src.length : e);
      i = e < 0 ? src.length : e;
    } else if (two === '/*') {
      const e = src.indexOf('*/', i + 2);
      wipe(i, e < 0 ? src.length : e + 2);
      i = e < 0 ? src.length : e + 2;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      wipe(i + 1, j);
      i = j + 1;
      prev = 'x';
    } else if (c === '`') {
      i = template(i + 1);
      prev = 'x';
    } else if (c === '/' && (REGEX_AFTER.has(prev) || /\b(return|typeof|case|of|in)\s*$/.test(src.slice(Math.max(0, i - 8), i)))) {
      let j = i + 1;
      let cls = false;
      while (j < src.length && src[j] !== '\n' && (cls || src[j] !== '/')) {
        if (src[j] === '\\') j++;
        else if (src[j] === '[') cls = true;
        else if (src[j] === ']') cls = false;
        j++;
      }
      wipe(i + 1, j);
      i = j + 1;
      prev = 'x';
    } else {
      if (c === '{') depth++;
      if (c === '}') {
        depth--;
        if (stack.length && stack[stack.length - 1] === depth) {
          stack.pop();
          i = template(i + 1);
          prev = 'x';
          continue;
        }
      }
      if (!/\s/.test(c)) prev = c;
      i++;
    }
  }
  return out.join('');
}

function nameOf(head: string, line: number): string | undefined {
  const h = head.replace(/\s+/g, ' ').trim();
  let m = /\bfunction\s*\*?\s*([\w$]+)?\s*(<[^(]*>)?\s*\(.*\)\s*(:.*)?$/.exec(h);
  if (m) return m[1] ?? `function@${line}`;
  if (/=>\s*$/.test(h)) {
    m = /(?:const|let|var)\s+([\w$]+)\s*(?::[^=]*)?=\s*(?:async\s*)?(?:<[^>]*>\s*)?(?:\(.*\)|[\w$]+)\s*(?::.*)?=>\s*$/.exec(h) ?? /([\w$]+)\s*:\s*(?:async\s*)?(?:\(.*\)|[\w$]+)\s*(?::.*)?=>\s*$/.exec(h);
    return m ? m[1]! : `arrow@${line}`;
  }
  m = /^(?:(?:public|private|protected|static|async|override|readonly|get|set)\s+)*\*?\s*([\w$]+)\s*(<[^(]*>)?\s*\(.*\)\s*(:.*)?$/.exec(h);
  if (m && !NOT_FUNCTIONS.has(m[1]!)) return m[1]!;
  return undefined;
}

/** Functions of one source text longer than `max` lines. */
export function longFunctionsIn(src: string, file: string, max: number): LongFunction[] {
  const text = blank(src);
  const lineAt: number[] = [];
  let ln = 1;
  for (let i = 0; i < text.length; i++) {
    lineAt[i] = ln;
    if (text[i] === '\n') ln++;
  }
  const out: LongFunction[] = [];
  const open: Array<{ at: number; name?: string; parens: number; stmtStart: number; typeLiteral: boolean }> = [];
  let stmtStart = 0; // start of the current statement/member (top level of parentheses)
  let piece = 0; // start of the current argument (inside parentheses)
  let parens = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(' || c === ',') {
      if (c === '(') parens++;
      piece = i + 1;
    } else if (c === ')') parens--;
    else if (c === '{') {
      const head = parens === 0 ? text.slice(stmtStart, i) : text.slice(piece, i);
      // `): { a: T } {` — a type literal after a colon is part of the head, not a body
      const typeLiteral = /:\s*$/.test(head);
      const name = !typeLiteral && (parens === 0 || /=>\s*$/.test(head)) ? nameOf(head, lineAt[i]!) : undefined;
      open.push({ at: i, name, parens, stmtStart, typeLiteral });
      parens = 0;
      stmtStart = piece = i + 1;
    } else if (c === '}') {
      const o = open.pop();
      if (o?.name) {
        const lines = lineAt[i]! - lineAt[o.at]! + 1;
        if (lines > max) out.push({ file, name: o.name, line: lineAt[o.at]!, lines });
      }
      parens = o?.parens ?? 0;
      // a `{…}` inside parentheses (a type or default value) or a type literal does not end the statement
      stmtStart = parens > 0 || o?.typeLiteral ? (o?.stmtStart ?? 0) : i + 1;
      piece = i + 1;
    } else if (c === ';' && parens === 0) stmtStart = piece = i + 1;
  }
  return out;
}

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path.join(dir, e.name)] : []));
}

export const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src');

/** Every function in src/ longer than `max` lines, longest first. */
export function longFunctions(max = 80): LongFunction[] {
  return files(SRC)
    .flatMap((f) => longFunctionsIn(fs.readFileSync(f, 'utf8'), path.relative(path.dirname(SRC), f), max))
    .sort((a, b) => b.lines - a.lines);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const max = Number(process.argv[2] ?? 80);
  const found = longFunctions(max);
  for (const f of found) process.stdout.write(`${String(f.lines).padStart(4)}  ${f.file}:${f.line}  ${f.name}\n`);
  process.stdout.write(`${found.length} function(s) over ${max} lines\n`);
}
