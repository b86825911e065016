#!/usr/bin/env node
// Runs the TypeScript sources directly; needs Node 24 (the project's own, via `npm run carteiro`).
// The compile cache first, so that every module after it is loaded from it (src/cli/compile-cache.ts).
import { enableCompileCache } from 'node:module';

enableCompileCache();
await import('../src/cli/main.ts');
