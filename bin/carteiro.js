#!/usr/bin/env node
// Runs the TypeScript sources directly; needs Node 24 (the project's own, via `npm run carteiro`).
import '../src/cli/main.ts';
