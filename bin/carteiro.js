#!/usr/bin/env node
// Runs the TypeScript sources directly; needs Node 24 (the project's own, via `npm run carteiro`).
// The compile cache first (a static import, evaluated before the dynamic one below), so that every
// module after it is loaded from it: src/cli/compile-cache.ts.
import '../src/cli/compile-cache.ts';

await import('../src/cli/main.ts');
