#!/usr/bin/env node
// Entry point of the `palisade` command. Palisade runs its TypeScript sources
// directly on Node.js 24 (type stripping); `npm ci` installs Node 24 locally.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(`palisade: Node.js ${process.versions.node} is not supported; Palisade needs Node.js 24 LTS.\n` +
    'Run `npm ci` in the Palisade checkout, then use `npx palisade …` or `npm run palisade -- …` (they use the pinned Node 24).');
  process.exit(1);
}
await import('../src/cli/main.ts');
