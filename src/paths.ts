// Files shipped with the service (schemas/, openapi/), found from the project root whether the code runs from
// src/ (tests) or from the compiled dist/ tree.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the project root (package.json)');
    dir = parent;
  }
  return dir;
}

export const PROJECT_ROOT = findRoot();
export const fromRoot = (...parts: string[]): string => join(PROJECT_ROOT, ...parts);
