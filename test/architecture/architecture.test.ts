/**
 * The rules docs/architecture.md states, checked on every file of src/ (run by `npm test` and by
 * `npm run lint`):
 *   - `process.env` is read only in src/config/;
 *   - SQL (a postgres.js tagged template, `.unsafe(…)`, `.file(…)`) is written only in src/ledger/;
 *   - a folder imports only folders of a lower layer (LAYERS), never a sibling of its own layer.
 * Files are parsed with oxc-parser (the parser knip uses), so comments and strings never count.
 * A breach that must stay would be listed, with its reason, in EXCEPTIONS (empty today); one that is no
 * longer needed fails the test, so the list only shrinks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSync } from 'oxc-parser';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Lowest first. A folder may import any folder of a lower layer. From docs/architecture.md's "Folders":
 * the foundation, the ledger, the pieces built on it, personal-data protection (it uses the catalog's
 * patterns), the flows, the parts built on the core, the API, the composition root (runtime), and the
 * CLI on top.
 */
const LAYERS: string[][] = [
  ['config', 'errors', 'util', 'crypto'],
  ['ledger'],
  ['tenancy', 'catalog', 'delivery', 'coordination'],
  ['protection'],
  ['ingest', 'worker', 'jobs'],
  ['integrations/supabase', 'integrations/n8n', 'dashboard', 'observability'],
  ['api'],
  ['runtime'],
  ['cli'],
];

/** Where a rule may be broken today: [file, the file it imports (or the rule's name), why]. */
type Exception = readonly [from: string, to: string, why: string];

const EXCEPTIONS: Exception[] = [];

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `${dir}/${f.split('\\').join('/')}`)
    .sort();
}

type Node = { type: string; [key: string]: unknown };

function walk(node: unknown, visit: (n: Node) => void): void {
  if (Array.isArray(node)) {
    for (const child of node) walk(child, visit);
  } else if (node !== null && typeof node === 'object') {
    const n = node as Node;
    if (typeof n.type === 'string') visit(n);
    for (const key of Object.keys(n)) if (key !== 'parent') walk(n[key], visit);
  }
}

/** A file's unit: its folder under src/, or under src/integrations/ (each integration is a unit of its own). */
const folderOf = (file: string): string => {
  const parts = file.split('/');
  return parts[1] === 'integrations' ? `integrations/${parts[2]}` : (parts[1] as string);
};
const propertyName = (n: Node): string | undefined => {
  const p = n.property as Node;
  if (!n.computed && p.type === 'Identifier') return p.name as string;
  if (p.type === 'Literal' && typeof p.value === 'string') return p.value;
  return undefined;
};
const isIdentifier = (n: unknown, name: string): boolean => (n as Node | null)?.type === 'Identifier' && (n as Node).name === name;

type Finding = { file: string; line: number; to: string; what: string };

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** What each file of src/ imports (files of src/ only) and where it reads env or writes SQL. */
function scan(): { imports: Finding[]; env: Finding[]; sql: Finding[] } {
  const imports: Finding[] = [];
  const env: Finding[] = [];
  const sql: Finding[] = [];
  for (const file of sourceFiles('src')) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const parsed = parseSync(file, text);
    assert.equal(parsed.errors.length, 0, `${file} does not parse: ${parsed.errors.map((e) => e.message).join('; ')}`);
    const at = (n: Node) => lineOf(text, n.start as number);
    const addImport = (n: Node, spec: unknown) => {
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const to = relative(ROOT, normalize(join(ROOT, dirname(file), spec)))
        .split('\\')
        .join('/');
      imports.push({ file, line: at(n), to, what: spec });
    };
    walk(parsed.program, (n) => {
      switch (n.type) {
        case 'ImportDeclaration':
        case 'ExportNamedDeclaration':
        case 'ExportAllDeclaration':
        case 'ImportExpression':
          addImport(n, (n.source as Node | null)?.value);
          if (n.type === 'ImportDeclaration' && ['process', 'node:process'].includes((n.source as Node).value as string)) {
            const names = (n.specifiers as Node[]).map((s) => (s.imported as Node | undefined)?.name ?? 'default');
            if (names.some((name) => name === 'env' || name === 'default')) env.push({ file, line: at(n), to: 'env', what: 'imports process (env)' });
          }
          break;
        case 'TSImportType':
          addImport(n, ((n.source ?? n.argument) as Node | null)?.value ?? ((n.argument as Node | null)?.literal as Node | undefined)?.value);
          break;
        case 'MemberExpression': {
          const name = propertyName(n);
          if (isIdentifier(n.object, 'process') && (name === 'env' || name === 'loadEnvFile'))
            env.push({ file, line: at(n), to: 'env', what: `process.${name}` });
          break;
        }
        case 'VariableDeclarator':
          if (isIdentifier(n.init, 'process') && (n.id as Node).type === 'ObjectPattern')
            env.push({ file, line: at(n), to: 'env', what: 'destructures process' });
          break;
        case 'TaggedTemplateExpression': {
          const tag = n.tag as Node;
          const isStringRaw = tag.type === 'MemberExpression' && isIdentifier(tag.object, 'String') && propertyName(tag) === 'raw';
          if (!isStringRaw) sql.push({ file, line: at(n), to: 'sql', what: 'a tagged template (postgres.js SQL)' });
          break;
        }
        case 'CallExpression': {
          const callee = n.callee as Node;
          const name = callee.type === 'MemberExpression' ? propertyName(callee) : undefined;
          if (name === 'unsafe' || name === 'file') sql.push({ file, line: at(n), to: 'sql', what: `.${name}(…)` });
          break;
        }
      }
    });
  }
  return { imports, env, sql };
}

const RANK = new Map(LAYERS.flatMap((folders, rank) => folders.map((f) => [f, rank] as const)));
const found = scan();
const used = new Set<Exception>();

function excepted(f: Finding): boolean {
  const e = EXCEPTIONS.find(([from, to]) => from === f.file && to === f.to);
  if (e) used.add(e);
  return e !== undefined;
}

const report = (list: Finding[], rule: string) => list.map((f) => `${f.file}:${f.line} ${f.what}: ${rule}`).join('\n');

test('every folder of src/ has a layer', () => {
  const folders = new Set(sourceFiles('src').map(folderOf));
  const missing = [...folders].filter((f) => !RANK.has(f));
  assert.deepEqual(missing, [], 'put each new folder of src/ in a layer of LAYERS (test/architecture/architecture.test.ts)');
});

test('process.env is read only in src/config/', () => {
  const bad = found.env.filter((f) => folderOf(f.file) !== 'config' && !excepted(f));
  assert.equal(bad.length, 0, `read settings through loadConfig() (src/config/config.ts), not the environment:\n${report(bad, 'env outside src/config/')}`);
});

test('SQL is written only in src/ledger/', () => {
  const bad = found.sql.filter((f) => folderOf(f.file) !== 'ledger' && !excepted(f));
  assert.equal(bad.length, 0, `put the query in a src/ledger/ module and call it:\n${report(bad, 'SQL outside src/ledger/')}`);
});

test('layers import only downward', () => {
  const bad = found.imports.filter((f) => {
    const from = folderOf(f.file);
    const to = folderOf(f.to);
    if (from === to || !f.to.startsWith('src/')) return false;
    const ok = (RANK.get(to) ?? Infinity) < (RANK.get(from) ?? -Infinity);
    return !ok && !excepted(f);
  });
  assert.equal(
    bad.length,
    0,
    `an import from a folder's own layer or a higher one (LAYERS, lowest first: ${LAYERS.map((l) => l.join('/')).join(' < ')}):\n${report(bad, 'upward import')}`,
  );
});

test('every exception is still needed', () => {
  // Runs after the rules above, which mark the exceptions they used.
  const stale = EXCEPTIONS.filter((e) => !used.has(e));
  assert.deepEqual(stale, [], 'these imports are gone: delete their entries from EXCEPTIONS');
});
