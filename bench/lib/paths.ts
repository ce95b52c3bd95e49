import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const ROOT_DIR = dirname(BENCH_DIR);
/** Git-ignored output: profiles, JSON results, stripped peers for old Node versions. */
export const OUT_DIR = join(BENCH_DIR, 'out');
export const PALISADE_BIN = join(ROOT_DIR, 'bin', 'palisade.js');
