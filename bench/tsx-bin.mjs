#!/usr/bin/env node
// The bin as it was before the compiled CLI (the baseline of cli-startup.bench.ts): tsx
// registers itself, then src/cli.ts runs from sources.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../src/cli.ts', import.meta.url).href);
