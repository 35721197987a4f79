/** Scratch directories of dead sandboxes are removed at the next start; live ones are left alone. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, utimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeScratchDir, removeOrphanedScratch } from '../src/scratch';

test('owned by a dead process → removed; owned by a live one or foreign → kept; old unowned → removed', async () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'scratch-test-'));
  const dead = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim();
  const mine = await makeScratchDir(tmp);
  expect(path.basename(mine)).toMatch(new RegExp(`^factory-build-${process.pid}-`));
  mkdirSync(path.join(tmp, `factory-build-${dead}-abc123`));
  mkdirSync(path.join(tmp, 'factory-build-OLD123'));
  mkdirSync(path.join(tmp, 'factory-build-NEW123'));
  utimesSync(path.join(tmp, 'factory-build-OLD123'), new Date(0), new Date(0));
  mkdirSync(path.join(tmp, 'something-else'));
  const removed = await removeOrphanedScratch(tmp);
  expect(removed.map((d) => path.basename(d)).sort()).toEqual([`factory-build-${dead}-abc123`, 'factory-build-OLD123']);
  expect(readdirSync(tmp).sort()).toEqual(['factory-build-NEW123', path.basename(mine), 'something-else'].sort());
});
