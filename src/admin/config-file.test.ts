import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PersistError, writeFileAtomic } from './config-file.ts';

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'palisade-atomic-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('writeFileAtomic: a new file is 0600 (the config holds secrets); no temp file is left', withDir(async (dir) => {
  const file = join(dir, 'palisade.yaml');
  await writeFileAtomic(file, 'services: []\n');
  assert.equal(readFileSync(file, 'utf8'), 'services: []\n');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ['palisade.yaml']);
}));

test('writeFileAtomic: a replaced file keeps its mode, whatever the umask', withDir(async (dir) => {
  const file = join(dir, 'palisade.yaml');
  writeFileSync(file, 'old\n');
  chmodSync(file, 0o664); // group-writable: a umask of 022 alone would drop that bit
  await writeFileAtomic(file, 'new\n');
  assert.equal(readFileSync(file, 'utf8'), 'new\n');
  assert.equal(statSync(file).mode & 0o777, 0o664);
}));

test('writeFileAtomic: through a symlink (a mounted config) the target is replaced and the link stays', withDir(async (dir) => {
  const target = join(dir, 'real.yaml');
  const link = join(dir, 'palisade.yaml');
  writeFileSync(target, 'old\n');
  symlinkSync(target, link);
  await writeFileAtomic(link, 'new\n');
  assert.equal(readFileSync(target, 'utf8'), 'new\n');
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.equal(readdirSync(dir).sort().join(','), 'palisade.yaml,real.yaml');
}));

test('writeFileAtomic: a failed replace is a PersistError naming the file; the old entry is untouched and no temp file is left', withDir(async (dir) => {
  const file = join(dir, 'palisade.yaml');
  mkdirSync(file); // rename() onto a directory fails, also for root
  writeFileSync(join(file, 'kept'), 'old\n');
  await assert.rejects(writeFileAtomic(file, 'new\n'), (err: unknown) => err instanceof PersistError && err.message.startsWith(`cannot write ${file}:`));
  assert.equal(readFileSync(join(file, 'kept'), 'utf8'), 'old\n');
  assert.deepEqual(readdirSync(dir), ['palisade.yaml']);
}));

test('writeFileAtomic: a path whose directory is missing is a PersistError naming the file; nothing is created', withDir(async (dir) => {
  const file = join(dir, 'missing', 'palisade.yaml');
  await assert.rejects(writeFileAtomic(file, 'x\n'), (err: unknown) => err instanceof PersistError && err.message.startsWith(`cannot write ${file}:`));
  assert.deepEqual(readdirSync(dir), []);
}));
